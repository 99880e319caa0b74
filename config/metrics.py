"""Prometheus metrics of OneMap (prometheus-client): what each domain counts, in one place.

Several processes: uvicorn runs `--workers N` processes, and a scrape reaches one of them. With
PROMETHEUS_MULTIPROC_DIR set (the Makefile's server line sets it under .var/ and empties it at
start), every process writes its values to files there and /metrics adds up all processes'
files (prometheus-client's multiprocess mode). Without it (one process: tests, runserver) the
process's own registry is served. The variable must be set before prometheus_client is first
imported: it picks the file-backed values at import time.

Labels are bounded: routes are URL templates (never raw paths), methods a fixed set, statuses
HTTP codes, dispatch actions the workflow's names. Nothing a client sends (tokens, ids, paths)
becomes a label."""

from __future__ import annotations

import os
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as mp

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # a path no URL pattern matched (a 404): one label for all of them

REQUESTS = Counter("onemap_http_requests", "HTTP requests answered, by route template, method and status",
                   ["route", "method", "status"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LATENCY = Histogram("onemap_http_request_duration_seconds", "Time from request to the answer's last byte, by route",
                    ["route"], buckets=LATENCY_BUCKETS)
FIXES = Counter("onemap_ingest_fixes", "Position fixes ingested (HTTP and WebSocket), by outcome", ["status"])
FANOUT_LAG = Histogram("onemap_fanout_lag_seconds",
                       "Per feed frame: from the commit of the oldest fix in it to the frame handed to the screens",
                       buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
TILE_CACHE_HITS = Counter("onemap_tile_cache_hits", "Tile lookups answered from the cache, by tier", ["tier"])
TILE_CACHE_MISSES = Counter("onemap_tile_cache_misses", "Tiles rendered and stored because the cache missed")
DISPATCH_ACTIONS = Counter("onemap_dispatch_actions", "Dispatch actions committed (command/), by action", ["action"])

# psycopg_pool's get_stats(), summed over the live processes. Instant values and the counters the
# pool keeps since it opened (a gauge: they go when their process goes).
POOL_STATS = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting", "requests_num",
              "requests_queued", "requests_wait_ms", "requests_errors", "usage_ms", "connections_num",
              "connections_errors", "connections_lost")
POOL = {name: Gauge(f"onemap_db_pool_{name}", f"psycopg_pool get_stats()['{name}'], summed over live processes",
                    multiprocess_mode="livesum") for name in POOL_STATS}
POOL_REFRESH_S = float(os.environ.get("ONEMAP_METRICS_POOL_REFRESH_S", "5"))


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class RequestBatch:
    """Requests counted in the process and added to the metrics once a second (flush()): in
    multiprocess mode every increment is a locked write to a memory-mapped file, and a counter
    plus a histogram cost ~10 us a request, a few per cent of a warm tile's whole cost; the
    batch costs ~1 us. A scrape flushes its own process first; the others' numbers are then at
    most FLUSH_S old (and a worker killed loses at most its last second)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str, int | str], int] = {}
        self.latency: dict[str, list[float]] = {}  # route -> [sum, count per bucket (+Inf last)]

    def add(self, route: str, method: str, status: int | str, seconds: float) -> None:
        key = (route, method, status)
        bucket = 1 + bisect_left(LATENCY_BUCKETS, seconds)  # the first bound >= seconds (le)
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            row = self.latency.get(route)
            if row is None:
                row = self.latency[route] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            row[0] += seconds
            row[bucket] += 1

    def flush(self) -> None:
        with self.lock:
            counts, latency = self.counts, self.latency
            self.counts, self.latency = {}, {}
        for (route, method, status), n in counts.items():
            REQUESTS.labels(route, method_label(method), str(status)).inc(n)
        for route, row in latency.items():
            # Histogram.observe() one at a time would cost what the batch saves: its own values
            # (prometheus_client's _sum and _buckets, one per bound) are added to directly.
            child = LATENCY.labels(route)
            child._sum.inc(row[0])
            for i, observed in enumerate(row[1:]):
                if observed:
                    child._buckets[i].inc(observed)


class LocalCounts:
    """A counter's increments kept in the process until flush(), for counters on hot paths
    (a warm tile's cache hit), for the same reason as RequestBatch."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, ...], int] = {}

    def inc(self, *labels: str) -> None:
        with self.lock:
            self.counts[labels] = self.counts.get(labels, 0) + 1

    def flush(self) -> None:
        with self.lock:
            counts, self.counts = self.counts, {}
        for labels, n in counts.items():
            (self.counter.labels(*labels) if labels else self.counter).inc(n)


REQUEST_BATCH = RequestBatch()
TILE_CACHE_HIT = LocalCounts(TILE_CACHE_HITS)
TILE_CACHE_MISS = LocalCounts(TILE_CACHE_MISSES)
FLUSH_S = 1.0


def flush() -> None:
    """Everything kept in the process, into the metrics. Requests last: a scrape that sees a
    request counted sees what it counted on its way too (a tile's cache hit)."""
    TILE_CACHE_HIT.flush()
    TILE_CACHE_MISS.flush()
    REQUEST_BATCH.flush()


def observe_request(route: str, method: str, status: int | str, seconds: float) -> None:
    REQUEST_BATCH.add(route, method, status, seconds)


_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")


def route_template(route: str) -> str:
    """A Django resolver route as a label: path() converters as they are, re_path() named groups
    as <name>, without the regex anchors and optional slashes ('tiles/^(?P<z>[^/]+)\\.mvt$' -> '/tiles/<z>.mvt')."""
    if "(?P<" in route or "^" in route:
        route = _GROUP.sub(r"<\1>", route).replace("/?", "").replace("^", "").replace("$", "").replace("\\", "")
    return "/" + route


def count_fixes(results: Iterable[dict[str, Any]]) -> None:
    counts: dict[str, int] = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    for status, n in counts.items():
        FIXES.labels(status).inc(n)


def count_dispatch_action(action: str) -> None:
    """Counted when the action's transaction commits (a rolled-back action never happened)."""
    from django.db import transaction

    transaction.on_commit(lambda: DISPATCH_ACTIONS.labels(action).inc(), robust=True)


FANOUT_SAMPLE = 16


def observe_fanout_lag(now: float, pending: dict[str, Any]) -> None:
    """A feed's frame about to go out: commit-to-now of the oldest fix among the first
    FANOUT_SAMPLE units pending. The pending dict keeps arrival order, so the oldest commit is at
    its front (a unit updated since keeps its place with a newer fix: then a slight
    underestimate); scanning every unit cost ~0.1 ms per 1,000-unit frame per feed. Records
    removed from the view are None; records read from the database have no committed_at."""
    oldest = min((rec.committed_at for rec in islice(pending.values(), FANOUT_SAMPLE)
                  if rec is not None and rec.committed_at is not None), default=None)
    if oldest is not None:
        FANOUT_LAG.observe(max(0.0, now - oldest))


def refresh_pool_gauges() -> None:
    """This process's psycopg pool, as Django opened it (never opened here)."""
    from django.db import DEFAULT_DB_ALIAS
    from django.db.backends.postgresql.base import DatabaseWrapper

    # The class-level registry Django keeps its pools in (django-stubs does not declare it).
    pool = getattr(DatabaseWrapper, "_connection_pools", {}).get(DEFAULT_DB_ALIAS)
    if pool is None:
        return
    stats = pool.get_stats()
    for name, gauge in POOL.items():
        gauge.set(stats.get(name, 0))


_background_started = False
_background_lock = threading.Lock()


def start_background() -> None:
    """Once per process: requests flushed every FLUSH_S, the pool gauges refreshed every
    POOL_REFRESH_S, so that a scrape (answered by one worker) sees every worker."""
    global _background_started
    with _background_lock:
        if _background_started:
            return
        _background_started = True

    def loop() -> None:
        next_pool = 0.0
        while True:
            try:
                flush()
                if POOL_REFRESH_S > 0 and time.monotonic() >= next_pool:
                    next_pool = time.monotonic() + POOL_REFRESH_S
                    refresh_pool_gauges()
            except Exception:  # noqa: BLE001 — metrics must never take a worker down
                pass
            time.sleep(FLUSH_S)

    threading.Thread(target=loop, name="metrics", daemon=True).start()


_LIVE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


def _forget_dead_processes(directory: str) -> None:
    """uvicorn's supervisor calls no hook when a worker dies or is replaced: its live gauges are
    removed here, at scrape time, when its pid no longer runs (counters stay, as they should)."""
    dead: set[int] = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        match = _LIVE_FILE.match(path.name)
        if match is None:
            continue
        pid = int(match[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.add(pid)
        except PermissionError:
            pass
    for pid in dead:
        mp.mark_process_dead(pid, directory)


def exposition() -> bytes:
    """The text format of every process's metrics (or this process's, without a multiprocess dir)."""
    flush()
    try:
        refresh_pool_gauges()
    except Exception:  # noqa: BLE001
        pass
    if MULTIPROC_DIR:
        _forget_dead_processes(MULTIPROC_DIR)
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry, MULTIPROC_DIR)
        return generate_latest(registry)
    return generate_latest()
