"""What the year of dispatch history adds to a fixture load: CPU of the generator, of the COPY
text, and of PostgreSQL (COPY, index builds, key validation, ANALYZE), measured from /proc so that
other jobs on the shared cores do not count. The load runs in a transaction that is rolled back:
the database is left as it was.

    DATABASE_URL=... .venv/bin/python bench/task_history.py

Appends the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

import fixtures.generate as fixture_generate  # noqa: E402
from bench.common import command_line, record, table  # noqa: E402
from bench.cpu import CpuMeter, postmaster_of  # noqa: E402
from fixtures.generate.task_load import clear_history, drop_foreign_keys, load_history  # noqa: E402


class Rollback(Exception):
    pass


def main() -> int:
    spent: dict[str, float] = {}
    original = fixture_generate.build_task_history

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.process_time()
        result = original(*args, **kwargs)
        spent["generate"] = time.process_time() - start
        return result

    fixture_generate.build_task_history = timed  # type: ignore[assignment]
    fixtures = fixture_generate.generate()
    assert fixtures.history is not None
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        steps[step] = now - clock[0]
        clock[0] = now

    try:
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                meter = CpuMeter(postmaster_of(cur.fetchone()[0]), None)
                client = time.process_time()
                wall = time.perf_counter()
                keys = drop_foreign_keys(cur)
                previous = clear_history(cur)
                lap("clear")
                counts = load_history(cur, fixtures.history, fixtures.checksum, keys, previous, False, lap)
                wall = time.perf_counter() - wall
                client = time.process_time() - client
                used = meter.spent()
            raise Rollback
    except Rollback:
        pass
    rows = [["generate (numpy, in process)", f"{spent['generate']:.1f}", ""],
            ["COPY text + driver (in process)", f"{client:.1f}", ""],
            ["PostgreSQL (COPY, indexes, keys, ANALYZE)", f"{used['db']:.1f}", ""],
            ["wall time of the load part", "", f"{wall:.1f}"]]
    text = table(["part", "CPU s", "wall s"], rows)
    notes = (f"{counts['command_task']:,} tasks, {counts['command_taskevent']:,} events, "
             f"{counts['command_assignment']:,} assignments; steps (wall s): "
             + ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
             + f". Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times carry it;"
             " CPU seconds do not).")
    print(text)
    print(notes)
    record("Fixture task history: what it adds to a load (bench/task_history.py)", command_line(), text, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
