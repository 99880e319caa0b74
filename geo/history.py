"""The position history: daily partitions of geo_positionfix kept by pg_partman (migration 0002),
its maintenance, and the track query that reads only the days it asks for.

`maintain()` is the periodic entry point (a job runner calls it, or `manage.py history_maintain`):
it makes the partitions a few days ahead, empties the default partition, and drops the days that
have passed the retention (ONEMAP_FIX_RETENTION_DAYS, the same window the ingest accepts). It uses
pg_partman's own functions, but with an explicit reference time instead of the clock inside
`partman.run_maintenance()`, so that tests and a catching-up run can say what "now" is. The
retention and premake are also written to partman.part_config, so `CALL
partman.run_maintenance_proc()` run by hand does the same as `maintain()` at the current time, except
for the default partition: run_maintenance leaves rows there (and then cannot create the days
they belong to), which is why `maintain()` empties it first.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone

# The retention is one setting for both sides: the ingest refuses fixes older than it
# (realtime.actions.check_fixes) and the history drops days older than it.
from realtime import conf

log = logging.getLogger(__name__)

PARENT = "geo_positionfix"
DEFAULT_PARTITION = "geo_positionfix_default"
# Days made ahead of `now`: a job runner that misses a few runs never leaves the ingest writing to
# the default partition.
PREMAKE_DAYS = 4
# One transaction-scoped lock so that two runners (a schedule and a hand-run command) never work
# at once: the second finds it taken and skips.
LOCK_KEY = 0x6F6E656D6170_01  # "onemap" + 1
# Maintenance locks the history whole, up front (attaching a day locks the default partition,
# detaching one the parent): it waits for the queries running on it, and the ingest waits behind
# it. Better to give up after this long and try again next run than to stall the ingest.
LOCK_TIMEOUT = "5s"


class HistoryNotPartitioned(RuntimeError):
    """The database has no pg_partman configuration for the history (migration 0002 not applied)."""


class HistoryBusy(RuntimeError):
    """The history's lock was not granted within LOCK_TIMEOUT; nothing was changed."""


@dataclass
class MaintenanceReport:
    now: datetime
    retention_days: int
    skipped: bool = False  # another maintenance held the lock
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_from_default: int = 0
    expired_in_default: int = 0

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self)
        report["now"] = self.now.isoformat()
        return report


def _partitions(cur: Any) -> set[str]:
    cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass", [PARENT])
    return {name for (name,) in cur.fetchall()}


def parent_table() -> str:
    """The schema-qualified name pg_partman knows the history by."""
    with connection.cursor() as cur:
        cur.execute("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE c.oid = %s::regclass", [PARENT])
        return str(cur.fetchone()[0])


def maintain(now: datetime | None = None) -> MaintenanceReport:
    """Bring the partitions in line with `now` (default: the current time). Idempotent.

    In order: rows in the default partition older than the retention are deleted (the ingest
    would refuse them, and their day is gone or about to be); the other rows there are moved into
    their days' partitions, which pg_partman creates; today and PREMAKE_DAYS days ahead are made;
    every day ending before now - retention is dropped whole."""
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("maintain(now=...) needs an aware datetime")
    retention_days = int(conf.get("FIX_RETENTION_DAYS"))
    if retention_days < 1:  # 0 or less would drop the days the ingest is writing
        raise ValueError(f"ONEMAP_FIX_RETENTION_DAYS must be at least 1, not {retention_days}")
    report = MaintenanceReport(now=now, retention_days=retention_days)
    parent = parent_table()
    cutoff = now - timedelta(days=retention_days)
    with transaction.atomic(), connection.cursor() as cur:
        # pg_partman names and bounds partitions in the session's time zone: days are UTC days.
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        cur.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
        if not cur.fetchone()[0]:
            report.skipped = True
            return report
        cur.execute("UPDATE partman.part_config SET retention = %s, premake = %s WHERE parent_table = %s",
                    [f"{retention_days} days", PREMAKE_DAYS, parent])
        if cur.rowcount != 1:
            raise HistoryNotPartitioned(f"pg_partman has no configuration for {parent}")
        try:
            cur.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", "") != "55P03":  # lock_not_available
                raise
            raise HistoryBusy(f"the history was busy for {LOCK_TIMEOUT}; nothing changed") from None
        before = _partitions(cur)

        cur.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE recorded_at < %s", [cutoff])  # noqa: S608 (constant)
        report.expired_in_default = cur.rowcount
        # partition_data_time moves one day per batch, starting each from the oldest row left.
        cur.execute(f"SELECT count(DISTINCT date_trunc('day', recorded_at)) FROM {DEFAULT_PARTITION}")  # noqa: S608
        days_in_default = cur.fetchone()[0]
        if days_in_default:
            cur.execute("SELECT partman.partition_data_time(%s, p_batch_count => %s)", [parent, days_in_default])
            report.moved_from_default = int(cur.fetchone()[0] or 0)

        cur.execute("SELECT partman.create_partition_time(%s, ARRAY(SELECT generate_series("
                    "date_trunc('day', %s::timestamptz), date_trunc('day', %s::timestamptz) + make_interval(days => %s),"
                    " interval '1 day')))", [parent, now, now, PREMAKE_DAYS])
        cur.execute("SELECT partman.drop_partition_time(%s, p_retention => %s::interval, p_keep_table => false,"
                    " p_keep_index => false, p_reference_timestamp => %s)", [parent, f"{retention_days} days", now])
        after = _partitions(cur)
    report.created = sorted(after - before)
    report.dropped = sorted(before - after)
    if report.created or report.dropped or report.moved_from_default or report.expired_in_default:
        log.info("history maintenance: %s", report.as_dict())
    return report


def partitions() -> list[tuple[str, str]]:
    """(name, bounds) of every partition, oldest first, the default last."""
    with connection.cursor() as cur:
        cur.execute("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
                    " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass"
                    " ORDER BY c.relname = %s, c.relname", [PARENT, DEFAULT_PARTITION])
        return [(name, bounds) for name, bounds in cur.fetchall()]


# The track of one device between two times. The bounds are on recorded_at, the partition key, so
# the planner reads only the days that overlap [start, end) (tests/test_history.py checks the
# plan), and within each day the unique (device_id, recorded_at) index.
TRACK_SQL = f"""
SELECT recorded_at, ST_X(geom), ST_Y(geom), speed, heading, accuracy
FROM {PARENT}
WHERE device_id = %s AND recorded_at >= %s AND recorded_at < %s
ORDER BY recorded_at
LIMIT %s
"""  # noqa: S608 (constant)


@dataclass(frozen=True)
class TrackPoint:
    recorded_at: datetime
    lon: float
    lat: float
    speed: float | None
    heading: float | None
    accuracy: float | None


def track(device_id: str, start: datetime, end: datetime, *, limit: int = 10_000) -> list[TrackPoint]:
    """The fixes of one device recorded in [start, end), oldest first, at most `limit`."""
    with connection.cursor() as cur:
        cur.execute(TRACK_SQL, [device_id, start, end, limit])
        return [TrackPoint(*row) for row in cur.fetchall()]
