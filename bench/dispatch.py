"""Dispatch benchmarks (issue 11), each beside a naive baseline measured in the same run:

1. recommendation among 10,000 live units: the KNN statement in the database (target p99 <= 10 ms)
   and GET /api/tasks/{id}/recommendations through a real server (p99 <= 30 ms); baselines: the
   same ranking by ST_DistanceSphere over every unit, and GET /api/me (the API's floor);
2. assign -> push received on a connected /ws/field socket (p99 <= 200 ms); baseline: a plain
   POST /api/pushes -> /ws/field delivery;
3. KPIs of one month for the whole city over a year of history (<= 500 ms); baseline: the same
   figures computed in Python from the rows;
4. 50 dispatchers creating, filing and assigning at once (>= 200 actions/s, no error, no lost
   action, the audit chain intact); baseline: one dispatcher.

It runs on a scratch copy of the dev database (CREATE DATABASE ... TEMPLATE onemap), with a
private Redis and a 2-worker server, and drops the copy at the end:

    .venv/bin/python bench/dispatch.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/dispatch.py --quick    # fewer samples, no RESULTS.md entry
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench.common import command_line, percentiles, record, table  # noqa: E402
from config.env import local_database_url  # noqa: E402

SCRATCH = "onemap_bench_dispatch"
TEMPLATE = os.environ.get("ONEMAP_BENCH_TEMPLATE", "onemap")
TARGET_UNITS = 10_000
HISTORY_TASKS = 200_000


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def admin_url(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def scratch_database() -> Any:
    base = os.environ.get("DATABASE_URL") or local_database_url()
    with psycopg.connect(admin_url(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        progress(f"copying the database {TEMPLATE} to {SCRATCH}")
        admin.execute(f'CREATE DATABASE "{SCRATCH}" TEMPLATE "{TEMPLATE}"')
    try:
        yield admin_url(base, SCRATCH)
    finally:
        with psycopg.connect(admin_url(base, "postgres"), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [SCRATCH])
            admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}"')


@contextmanager
def private_redis() -> Any:
    tmp = Path(tempfile.mkdtemp(prefix="onemap-bench-redis-"))
    sock = tmp / "redis.sock"
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(unix_socket_path=str(sock))
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling for start-up
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_units(cursor: Any) -> int:
    """Top the units up to 10,000 (copies of real officers, jittered) and make every one fresh."""
    cursor.execute("SELECT (SELECT count(*) FROM geo_officer) + (SELECT count(*) FROM geo_vehicle)")
    have = cursor.fetchone()[0]
    extra = max(0, TARGET_UNITS - have)
    if extra:
        cursor.execute(
            "INSERT INTO geo_officer (unit_id, district_id, street_id, call_sign, device_id, geom, position_at, name,"
            " badge) SELECT o.unit_id, o.district_id, o.street_id, 'B' || g, 'bench-' || g,"
            " ST_Translate(o.geom, (random() - 0.5) * 0.01, (random() - 0.5) * 0.01), now(), o.name, 'BB' || g"
            " FROM generate_series(1, %s) g JOIN (SELECT row_number() OVER (ORDER BY id) - 1 AS i,"
            " * FROM geo_officer WHERE geom IS NOT NULL) o"
            " ON o.i = g %% (SELECT count(*) FROM geo_officer WHERE geom IS NOT NULL)", [extra])
    # Fresh for the whole run (the stale threshold is 120 s).
    cursor.execute("UPDATE geo_officer SET position_at = now() + interval '1 hour' WHERE geom IS NOT NULL")
    cursor.execute("UPDATE geo_vehicle SET position_at = now() + interval '1 hour' WHERE geom IS NOT NULL")
    cursor.execute("SELECT (SELECT count(*) FROM geo_officer WHERE geom IS NOT NULL)"
                   " + (SELECT count(*) FROM geo_vehicle WHERE geom IS NOT NULL)")
    return int(cursor.fetchone()[0])


def ensure_history(cursor: Any) -> int:
    """A year of tasks for the KPI figures: the fixtures' history when loaded, else generated."""
    cursor.execute("SELECT count(*) FROM command_task")
    have = cursor.fetchone()[0]
    if have < HISTORY_TASKS:
        progress(f"generating {HISTORY_TASKS - have:,} synthetic tasks (the fixtures hold {have:,})")
        cursor.execute("""
            INSERT INTO command_task (number, state, source, category_id, description, address, geom, grid_cell_id,
                community_id, street_id, district_id, created_at, filed_at, dispatched_at, accepted_at, arrived_at,
                handled_at, closed_at, deadline, overdue, escalation, reworks, extensions, version, updated_at)
            SELECT 'B' || g, CASE WHEN r < 0.9 THEN 'closed' ELSE 'dispatched' END, 'patrol', 'E0501', '', '',
                   ST_PointOnSurface(c.geom), c.code, c.community_id, c.street_id, c.district_id,
                   t0, t0, t0 + interval '10 min', t0 + interval '25 min', t0 + interval '50 min',
                   CASE WHEN r < 0.9 THEN t0 + (r * 30)::int * interval '1 hour' END,
                   CASE WHEN r < 0.9 THEN t0 + (r * 40)::int * interval '1 hour' END,
                   t0 + interval '26 hours', false, 'street', (r < 0.05)::int, (r > 0.93)::int, 1, t0
            FROM (SELECT g, random() AS r, now() - random() * interval '365 days' AS t0,
                         (random() * 1e9)::bigint %% (SELECT count(*) FROM geo_gridcell) AS i
                  FROM generate_series(1, %s) g) s
            JOIN (SELECT row_number() OVER (ORDER BY code) - 1 AS i, * FROM geo_gridcell) c ON c.i = s.i
        """, [HISTORY_TASKS - have])
        cursor.execute("ANALYZE command_task")
    cursor.execute("SELECT count(*) FROM command_task")
    return int(cursor.fetchone()[0])


def timed(fn: Any, n: int) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


NAIVE_RECOMMEND = """
SELECT o.id, ST_DistanceSphere(o.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490)) AS d
FROM geo_officer o WHERE o.geom IS NOT NULL AND o.position_at >= %(fresh)s
ORDER BY d LIMIT %(k)s
"""


def bench_recommend_db(points: list[tuple[float, float]], n: int) -> list[list[Any]]:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from command.recommend import CANDIDATES_PER_KIND, _sql
    from command.workflow import WORKING_STATES

    sql = _sql(("officer", "vehicle"))
    fresh = timezone.now() - timedelta(seconds=120)
    rows = []
    with connection.cursor() as cursor:
        def knn(i: int) -> None:
            lon, lat = points[i % len(points)]
            cursor.execute(sql, {"lon": lon, "lat": lat, "k": CANDIDATES_PER_KIND, "fresh": fresh,
                                 "working": list(WORKING_STATES)})
            cursor.fetchall()

        def naive(i: int) -> None:
            lon, lat = points[i % len(points)]
            cursor.execute(NAIVE_RECOMMEND, {"lon": lon, "lat": lat, "k": CANDIDATES_PER_KIND, "fresh": fresh})
            cursor.fetchall()

        timed(knn, 20)  # warm-up
        for name, fn, target in (("recommend, KNN in the database", knn, "p99 <= 10 ms"),
                                 ("baseline: distance to every unit", naive, "")):
            stats = percentiles(timed(fn, n))
            rows.append([name, n, f"{stats['p50']:.2f}", f"{stats['p99']:.2f}", target,
                         ("meets" if stats["p99"] <= 10 else "misses") if target else ""])
    return rows


def bench_kpis(n: int) -> list[list[Any]]:
    import datetime as dt

    from django.db import connection

    from command import kpis
    from command.workdays import TZ

    # The busiest month of the history: the worst case. (The previous calendar month, measured
    # before, held no tasks at all when the history is the fixtures', which end in 2023.)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (date_trunc('month', filed_at AT TIME ZONE %s))::date FROM command_task"
                       " WHERE filed_at IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1", [str(TZ)])
        start = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM command_task WHERE filed_at >= %s AND filed_at < %s",
                       [start, start + dt.timedelta(days=32)])
        progress(f"KPIs over {start:%Y-%m}: about {cursor.fetchone()[0]:,} tasks filed")
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    rows = []
    for level in ("district", "street"):
        stats = percentiles(timed(lambda i, level=level: kpis.compute(level, start, end), n))
        rows.append([f"KPIs {start:%Y-%m}, city by {level}", n, f"{stats['p50']:.1f}", f"{stats['p99']:.1f}",
                     "<= 500 ms", "meets" if stats["p99"] <= 500 else "misses"])

    def naive(i: int) -> None:
        s = dt.datetime.combine(start, dt.time(0), TZ)
        e = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), TZ)
        with connection.cursor() as cursor:
            cursor.execute("SELECT district_id, filed_at, deadline, closed_at, handled_at, state, reworks, extensions"
                           " FROM command_task")
            out: dict[str, list[int]] = {}
            for district, filed, deadline, closed, handled, state, reworks, extensions in cursor:
                row = out.setdefault(district, [0, 0, 0, 0, 0, 0])
                row[0] += filed is not None and s <= filed < e
                if deadline is not None and s <= deadline < e and state not in ("cancelled", "merged"):
                    row[1] += 1
                    row[2] += closed is not None
                    row[3] += closed is not None and handled is not None and handled <= deadline
                    row[4] += closed is not None and reworks > 0
                    row[5] += extensions > 0

    stats = percentiles(timed(naive, max(3, n // 5)))
    rows.append(["baseline: the same in Python over the rows", max(3, n // 5), f"{stats['p50']:.1f}",
                 f"{stats['p99']:.1f}", "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples; nothing is recorded")
    args = parser.parse_args()
    n = 100 if args.quick else 1000
    with scratch_database() as url, private_redis() as redis_url:
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.db import connection

        with connection.cursor() as cursor:
            units = prepare_units(cursor)
            progress(f"{units:,} live units")
            history = ensure_history(cursor)
            progress(f"{history:,} tasks of history")
            cursor.execute("ANALYZE geo_officer")
            cursor.execute("SELECT ST_X(geom), ST_Y(geom) FROM geo_hotspotpoint ORDER BY id")
            points = [(x, y) for x, y in cursor.fetchall()]
        rows: list[list[Any]] = []
        progress("recommendation in the database")
        rows += bench_recommend_db(points, n)
        progress("KPIs")
        rows += bench_kpis(max(5, n // 50))
        from bench.dispatch_server import bench_server

        progress("through a real server (2 workers, Redis)")
        rows += bench_server(url, redis_url, points, quick=args.quick, progress=progress)
        connection.close()
    headers = ["measure", "n", "p50 ms (or actions/s)", "p99 ms", "target", "result"]
    text = table(headers, rows)
    print(text)
    if not args.quick:
        record("Dispatch (bench/dispatch.py)", command_line(), text,
               f"{units:,} live units (fixture officers and vehicles plus generated officers), {history:,} tasks.")


if __name__ == "__main__":
    main()
