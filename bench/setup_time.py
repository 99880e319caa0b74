"""How long set-up takes: a second `make setup` on a ready checkout, and a full fixture reload.

    .venv/bin/python bench/setup_time.py [--runs 3] [--reload]

Prints a table and appends it to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, command_line, percentiles, record, table  # noqa: E402


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reload", action="store_true", help="also time load_fixtures --force")
    args = parser.parse_args()
    timed(["make", "setup"])  # make sure the checkout is ready; not counted
    rows: list[list[object]] = []
    samples = [timed(["make", "setup"]) for _ in range(args.runs)]
    stats = percentiles(samples)
    rows.append(["second `make setup` (ready checkout)", args.runs, f"{stats['p50']:.2f}", f"{stats['max']:.2f}", "target: seconds"])
    if args.reload:
        t = timed([".venv/bin/python", "manage.py", "load_fixtures", "--force"])
        rows.append(["`load_fixtures --force` (all tables)", 1, f"{t:.1f}", f"{t:.1f}", "target: < 120 s"])
    text = table(["what", "runs", "median s", "max s", "reference"], rows)
    print(text)
    record("Set-up time", command_line(), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
