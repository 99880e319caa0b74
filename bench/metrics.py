"""What metrics cost on the hot paths, in prometheus-client's multiprocess mode (as `make serve`
runs it): one request's count and latency (config.metrics.observe_request, batched in the
process) beside the same through prometheus-client directly (a Counter.inc and a
Histogram.observe, each a locked write to a memory-mapped file); and the fan-out lag observed
per feed frame (config.metrics.observe_fanout_lag) beside a scan of every pending unit.

Usage: .venv/bin/python bench/metrics.py [--no-record]   (a few seconds; no server, no database)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

DIRECTORY = tempfile.mkdtemp(prefix="onemap-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = DIRECTORY  # before prometheus_client is imported
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import command_line, record, table  # noqa: E402
from config import metrics  # noqa: E402

REPEATS = 5


def best_us(fn: object, n: int) -> float:
    """The best of REPEATS runs of n calls, in microseconds per call."""
    assert callable(fn)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


class Rec:
    __slots__ = ("committed_at",)

    def __init__(self, committed_at: float) -> None:
        self.committed_at = committed_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    def direct() -> None:
        metrics.REQUESTS.labels("/bench", "GET", "200").inc()
        metrics.LATENCY.labels("/bench").observe(0.003)

    def batched() -> None:
        metrics.observe_request("/bench", "GET", 200, 0.003)

    def flush_each_second() -> None:  # what the flush adds per request at 1,000 requests/s
        for _ in range(1000):
            batched()
        metrics.REQUEST_BATCH.flush()

    now = time.time()
    pending = {str(i): Rec(now - 0.2) for i in range(1000)}

    def scan_all() -> None:
        oldest = min((r.committed_at for r in pending.values() if r is not None and r.committed_at is not None),
                     default=None)
        if oldest is not None:
            metrics.FANOUT_LAG.observe(now - oldest)

    rows = [
        ["one request: Counter.inc + Histogram.observe (direct)", f"{best_us(direct, 20000):.2f}"],
        ["one request: observe_request (batched)", f"{best_us(batched, 20000):.2f}"],
        ["one request: batched, with a flush every 1,000", f"{best_us(flush_each_second, 20) / 1000:.2f}"],
        ["a 1,000-unit frame: scan every pending unit + observe", f"{best_us(scan_all, 2000):.2f}"],
        ["a 1,000-unit frame: observe_fanout_lag (first 16)", f"{best_us(lambda: metrics.observe_fanout_lag(now, pending), 2000):.2f}"],
    ]
    text = table(["what", "us per call"], rows)
    print(text)
    if not args.no_record:
        record("Metrics on the hot paths (multiprocess mode)", command_line(), text,
               "Per request before the batch: a counter and a histogram written to the multiprocess "
               "files on every request. The batch is what config/observe.py calls on every HTTP request. "
               f"Load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine).")


if __name__ == "__main__":
    try:
        main()
    finally:
        for path in Path(DIRECTORY).glob("*.db"):
            path.unlink()
        os.rmdir(DIRECTORY)
