"""History benchmark: the position history partitioned by day (migration geo 0002, pg_partman)
beside the unpartitioned table it replaced, in the same run on the same generated data.

A private scratch database (created and dropped here) holds both tables, each built with the DDL
the migration uses (schema `plain`: the old table; schema `parted`: the partitioned one). Each is
filled with the same 30 days of history at one fix per unit every 10 s (SQL generate_series, not
real time), then measured:
- ingest: batches of fixes through the ingest's own history statement (realtime.actions
  STORE_FIXES without the unit updates), one connection, the two tables taking turns batch by
  batch for about --ingest-seconds of each;
- a one-unit one-day track query (geo.history.TRACK_SQL), warm, repeated;
- retention: removing the oldest day (DROP of a partition vs DELETE + VACUUM).

The city has ~9,500 units; 30 days of them is ~2.5 billion rows (~500 GB), far beyond this
machine and the bench's time budget, so --units scales the unit count down (default 40: 10.6
million rows per table, about 3 minutes in all) and the results say so.

    .venv/bin/python bench/history.py [--units 40] [--ingest-seconds 15] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.common import command_line, percentiles, record, table  # noqa: E402

DAYS = 30
SCHEMAS = ("plain", "parted")
STEP_S = 10
CITY_UNITS = 9_500
INDEXES = {  # what the migration's DDL declares inline, added back after the bulk load
    "plain": ["ALTER TABLE geo_positionfix ADD CONSTRAINT geo_positionfix_pkey PRIMARY KEY (id)"],
    "parted": ["ALTER TABLE geo_positionfix ADD CONSTRAINT geo_positionfix_pkey PRIMARY KEY (id, recorded_at)"],
}
COMMON_INDEXES = [
    "ALTER TABLE geo_positionfix ADD CONSTRAINT positionfix_device_time_uniq UNIQUE (device_id, recorded_at)",
    "CREATE INDEX positionfix_received_brin ON geo_positionfix USING brin (received_at)",
]
GENERATE = """
INSERT INTO plain.geo_positionfix (device_id, recorded_at, received_at, geom, speed, heading, accuracy, battery)
SELECT 'U' || lpad(u::text, 5, '0'), t, t + interval '1 second',
       ST_SetSRID(ST_MakePoint(116.0 + (u %% 100) * 0.01 + random() * 0.01,
                               39.6 + (u / 100) * 0.01 + random() * 0.01), 4490),
       random() * 15, random() * 360, 5 + random() * 20, 20 + random() * 80
FROM generate_series(%s::timestamptz, %s::timestamptz - interval '10 seconds', interval '10 seconds') AS t
CROSS JOIN LATERAL generate_series(1, %s + 0 * extract(epoch FROM t)::int) AS u
"""
# The unit series refers to t, so it is a lateral call under each time: rows are written in time
# order, every unit's fix of one tick together, as the ingest writes them. A plain cross join let
# the planner put the units outside and write each unit's 30 days contiguously, which made a track
# read ~170 pages instead of one per fix.


def conninfo(db: str) -> str:
    import psycopg

    from config.env import database_from_url, local_database_url

    d = database_from_url(os.environ.get("DATABASE_URL") or local_database_url())
    return psycopg.conninfo.make_conninfo(dbname=db, user=d["USER"] or None, host=d["HOST"] or None,
                                          port=d["PORT"] or None, password=d["PASSWORD"] or None)


def timed(conn, sql: str, params=None) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    conn.execute(sql, params)
    return time.perf_counter() - started


def build(conn, units: int, start: datetime, end: datetime) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Both tables with the migration's DDL, the same rows in each, indexed after the load."""
    import importlib

    migration = importlib.import_module("geo.migrations.0002_positionfix_partitioned")
    seconds: dict[str, float] = {}
    conn.execute("CREATE EXTENSION postgis")
    conn.execute("CREATE SCHEMA partman")
    conn.execute("CREATE EXTENSION pg_partman SCHEMA partman")
    for schema, ddl in (("plain", migration.CREATE_PLAIN), ("parted", migration.CREATE_PARTITIONED)):
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}, public")
        conn.execute(ddl)
        conn.execute("ALTER TABLE geo_positionfix DROP CONSTRAINT geo_positionfix_pkey,"
                     " DROP CONSTRAINT positionfix_device_time_uniq")
        conn.execute("DROP INDEX positionfix_received_brin")
    conn.execute("SET search_path = public")
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SELECT partman.create_parent(p_parent_table => 'parted.geo_positionfix', p_control => 'recorded_at',"
                 " p_type => 'native', p_interval => '1 day', p_premake => 4, p_start_partition => %s)",
                 [start.strftime("%Y-%m-%d %H:%M:%S")])
    conn.execute("UPDATE partman.part_config SET retention = '30 days', retention_keep_table = false,"
                 " infinite_time_partitions = true WHERE parent_table = 'parted.geo_positionfix'")
    seconds["generate plain"] = timed(conn, GENERATE, [start, end, units])
    columns = "id, device_id, recorded_at, received_at, geom, speed, heading, accuracy, battery"
    seconds["copy into parted"] = timed(conn, f"INSERT INTO parted.geo_positionfix ({columns})"  # noqa: S608
                                              f" SELECT {columns} FROM plain.geo_positionfix")
    conn.execute("SELECT setval('parted.geo_positionfix_id_seq', (SELECT max(id) FROM plain.geo_positionfix))")
    for schema in ("plain", "parted"):
        conn.execute(f"SET search_path = {schema}, public")
        started = time.perf_counter()
        for statement in INDEXES[schema] + COMMON_INDEXES:
            conn.execute(statement)
        seconds[f"index {schema}"] = time.perf_counter() - started
        seconds[f"vacuum analyze {schema}"] = timed(conn, "VACUUM ANALYZE geo_positionfix")
    conn.execute("SET search_path = public")
    return seconds


def table_bytes(conn, schema: str) -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')"
        " AND c.relname LIKE 'geo_positionfix%%'", [schema]).fetchone()[0])


class Ingest:
    """Fixes after the history's end, every unit every 10 s, in batches, the two tables taking
    turns batch by batch (which goes first alternates): background work (checkpoints, autovacuum
    after the bulk load, other processes on the machine) falls on both alike. Sequential phases
    per table gave a 2x gap that vanished when interleaved."""

    def __init__(self, units: int, batch: int, first: datetime) -> None:
        from realtime.actions import STORE_FIXES

        statement = STORE_FIXES.format(unit_ctes="", unit_results="")
        assert statement.count("INSERT INTO geo_positionfix") == 1
        self.statements = {schema: statement.replace("INSERT INTO geo_positionfix", f"INSERT INTO {schema}.geo_positionfix")
                           for schema in SCHEMAS}
        self.units, self.batch, self.first = units, batch, first
        self.samples: dict[str, list[float]] = {schema: [] for schema in SCHEMAS}
        self.stored: dict[str, int] = dict.fromkeys(SCHEMAS, 0)

    def run(self, conn, seconds: float) -> None:  # type: ignore[no-untyped-def]
        conn.execute("CHECKPOINT")  # the bulk load's dirty pages are not the ingest's cost
        sent, round_ = 0, 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            rows = []
            for n in range(sent, sent + self.batch):
                unit, tick = n % self.units, n // self.units
                at = self.first + timedelta(seconds=STEP_S * tick)
                rows.append([f"U{unit + 1:05d}", at.isoformat(), 116.0 + unit % 100 * 0.01, 39.6 + unit // 100 * 0.01,
                             5.0, 90.0, 8.0, 70.0])
            sent += self.batch
            body = json.dumps(rows)
            for schema in (SCHEMAS if round_ % 2 == 0 else SCHEMAS[::-1]):
                started = time.perf_counter()
                inserted = conn.execute(self.statements[schema], [body]).fetchone()[0]
                self.samples[schema].append(time.perf_counter() - started)
                self.stored[schema] += len(inserted)
            round_ += 1

    def result(self, schema: str) -> dict[str, float]:
        samples = self.samples[schema]
        p = percentiles(samples)
        return {"fixes/s": self.stored[schema] / sum(samples), "batches": len(samples), "p50 ms": p["p50"] * 1000,
                "p99 ms": p["p99"] * 1000, "stored": self.stored[schema]}


def tracks(conn, device: str, day: datetime, repeat: int) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The one-unit one-day track on each table, the two taking turns like the ingest."""
    from geo.history import TRACK_SQL

    assert TRACK_SQL.count("FROM geo_positionfix") == 1
    statements = {schema: TRACK_SQL.replace("FROM geo_positionfix", f"FROM {schema}.geo_positionfix")
                  for schema in SCHEMAS}
    params = [device, day, day + timedelta(days=1), 100_000]
    rows = {schema: len(conn.execute(statements[schema], params).fetchall()) for schema in SCHEMAS}  # warm
    samples: dict[str, list[float]] = {schema: [] for schema in SCHEMAS}
    db_samples: dict[str, list[float]] = {schema: [] for schema in SCHEMAS}
    plans: dict[str, Any] = {}
    for n in range(repeat):
        for schema in (SCHEMAS if n % 2 == 0 else SCHEMAS[::-1]):
            started = time.perf_counter()
            conn.execute(statements[schema], params).fetchall()
            samples[schema].append(time.perf_counter() - started)
            plans[schema] = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statements[schema],
                                         params).fetchone()[0][0]
            db_samples[schema].append(plans[schema]["Execution Time"])

    def relations(node: dict[str, Any]) -> set[str]:
        found = {node["Relation Name"]} if "Relation Name" in node else set()
        for child in node.get("Plans", []):
            found |= relations(child)
        return found

    out = {}
    for schema in SCHEMAS:
        p, top = percentiles(samples[schema]), plans[schema]["Plan"]
        out[schema] = {"rows": rows[schema], "p50 ms": p["p50"] * 1000, "p99 ms": p["p99"] * 1000,
                       "db ms": percentiles(db_samples[schema])["p50"], "relations": len(relations(top)),
                       "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)}
    return out


def retention(conn, start: datetime, now: datetime) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Remove the oldest day from each: pg_partman drops its partition; the plain table DELETEs the
    rows and needs a VACUUM before the space is reusable (and never gives it back to the disk)."""
    cutoff_now = now + timedelta(days=1)  # the oldest day [start, start + 1 day) has just expired
    out: dict[str, float] = {}
    out["plain delete s"] = timed(conn, "DELETE FROM plain.geo_positionfix WHERE recorded_at < %s",
                                  [start + timedelta(days=1)])
    out["plain vacuum s"] = timed(conn, "VACUUM plain.geo_positionfix")
    out["parted drop s"] = timed(conn, "SELECT partman.drop_partition_time('parted.geo_positionfix',"
                                 " p_retention => '30 days', p_reference_timestamp => %s)", [cutoff_now])
    return out


def main() -> None:
    import django
    import psycopg

    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=40, help=f"units reporting every 10 s (the city: {CITY_UNITS:,})")
    ap.add_argument("--ingest-seconds", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=500, help="fixes per ingest statement")
    ap.add_argument("--repeat", type=int, default=50, help="track queries timed per table")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.units <= 99_999:
        ap.error("--units must be 1..99999")
    django.setup()
    run_started = time.perf_counter()
    load_before = os.getloadavg()[0]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end = now
    start = (end - timedelta(days=DAYS)).replace(hour=0)
    rows_expected = args.units * int((end - start).total_seconds()) // STEP_S
    name = "onemap_history_bench"
    admin = psycopg.connect(conninfo("postgres"), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(conninfo(name), autocommit=True) as conn:
            print(f"building {rows_expected:,} rows per table ({args.units} units, {DAYS} days) ...", file=sys.stderr)
            build_s = build(conn, args.units, start, end)
            sizes = {s: table_bytes(conn, s) for s in ("plain", "parted")}
            partitions = conn.execute("SELECT count(*) FROM pg_inherits"
                                      " WHERE inhparent = 'parted.geo_positionfix'::regclass").fetchone()[0]  # type: ignore[index]
            day = (start + timedelta(days=DAYS // 2))
            device = f"U{(args.units + 1) // 2:05d}"
            results: dict[str, dict[str, dict[str, Any]]] = {}
            load = Ingest(args.units, args.batch, end)
            print("ingest ...", file=sys.stderr)
            load.run(conn, 2 * args.ingest_seconds)
            print("track ...", file=sys.stderr)
            track = tracks(conn, device, day, args.repeat)
            for schema in SCHEMAS:
                results[schema] = {"ingest": load.result(schema), "track": track[schema]}
            removal = retention(conn, start, end)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
    total_s = time.perf_counter() - run_started
    load_after = os.getloadavg()[0]

    rows = []
    for schema, label in (("plain", "unpartitioned (before)"), ("parted", f"daily partitions ({partitions} incl. default)")):
        i, t = results[schema]["ingest"], results[schema]["track"]
        removal_s = (f"{removal['plain delete s']:.2f} + vacuum {removal['plain vacuum s']:.2f}" if schema == "plain"
                     else f"{removal['parted drop s']:.3f}")
        rows.append([label, f"{sizes[schema] / 2**30:.2f}", f"{i['fixes/s']:,.0f}", f"{i['p50 ms']:.1f}",
                     f"{i['p99 ms']:.1f}", f"{t['rows']:,}", f"{t['p50 ms']:.2f}", f"{t['p99 ms']:.2f}",
                     f"{t['db ms']:.2f}", f"{t['relations']}", f"{t['buffers']:,}", removal_s])
    text = table(["table", "GiB", "ingest fixes/s", "batch p50 ms", "batch p99 ms", "track rows", "track p50 ms",
                  "track p99 ms", "track db ms", "tables read", "track buffers", "drop oldest day s"], rows)
    city_rows = CITY_UNITS * DAYS * 86_400 // STEP_S
    notes = (f"{rows_expected:,} rows per table: {args.units} units every {STEP_S} s for {DAYS} days, generated with "
             f"generate_series (the city's {CITY_UNITS:,} units would be {city_rows:,} rows, "
             f"~{city_rows * sizes['plain'] / max(rows_expected, 1) / 2**40:.1f} TiB at this run's bytes per row: "
             f"scaled down {CITY_UNITS / args.units:.0f}x for this machine). Ingest: {args.batch} fixes per statement, "
             f"one connection, the tables taking turns batch by batch for {2 * args.ingest_seconds:.0f} s "
             f"(after a CHECKPOINT), the ingest's history statement; the city's rate is "
             f"{CITY_UNITS // STEP_S:,} fixes/s. Track: unit {device}, one UTC day ({day:%Y-%m-%d}), warm, "
             f"{args.repeat} runs each, taking turns, timed at the client (rows fetched into Python); db ms: the median execution time "
             f"of as many EXPLAIN (ANALYZE, BUFFERS), buffers from the last. Rows are written in time order, so a "
             f"unit's fixes of a day are scattered over thousands of heap pages (the buffers column) as they would "
             f"be at the city's scale (one page per fix there: each 10 s tick fills ~200 pages). Build: "
             + ", ".join(f"{k} {v:.1f} s" for k, v in build_s.items()) + f". Whole run {total_s:.0f} s; 1-minute load average {load_before:.1f} at the start, "
             f"{load_after:.1f} at the end (the machine is shared).")
    print(text)
    print(notes)
    if not args.no_record:
        record("History (bench/history.py)", command_line(), text, notes)


if __name__ == "__main__":
    main()
