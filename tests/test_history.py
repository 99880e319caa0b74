"""The position history partitioned by day (geo/history.py, migration geo 0002): maintenance under
a controlled 'now' makes days ahead, drops expired days whole and empties the default partition;
the ingest stays idempotent on the partitioned table; a track query reads only its days.

Everything here runs on the main thread inside the test's transaction, DDL included (PostgreSQL
rolls back CREATE/DROP of partitions), so the test database's partitions are left as they were.
No `world` fixture: its teardown deletes fixes from another connection, which would wait on the
locks that partition DDL holds until this transaction ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from geo import history
from geo.models import Officer, PositionFix
from realtime.actions import ACCEPTED, DUPLICATE, do_ingest_fixes
from realtime.devices import DeviceIdentity

pytestmark = pytest.mark.django_db

# A controlled 'now' far from the real clock, so no partition of it exists before the test.
NOW = datetime(2031, 3, 10, 12, 0, tzinfo=UTC)
DEVICE = "HISTORY-TEST-1"


def day_name(at: datetime) -> str:
    return f"geo_positionfix_p{at:%Y_%m_%d}"


def insert_fix(device_id: str, at: datetime) -> str:
    """Insert one fix straight into the history; return the partition it landed in."""
    with connection.cursor() as cur:
        cur.execute("INSERT INTO geo_positionfix (device_id, recorded_at, received_at, geom)"
                    " VALUES (%s, %s, %s, ST_SetSRID(ST_MakePoint(116.4, 39.9), 4490))"
                    " RETURNING tableoid::regclass::text", [device_id, at, at])
        return str(cur.fetchone()[0])


def partition_of(device_id: str, at: datetime) -> str | None:
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM geo_positionfix WHERE device_id = %s AND recorded_at = %s",
                    [device_id, at])
        row = cur.fetchone()
        return None if row is None else str(row[0])


def test_history_is_partitioned_by_day_with_a_default_and_a_retention():
    history.maintain()  # a test database migrated days ago has no partition for today yet
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE oid = 'geo_positionfix'::regclass")
        assert cur.fetchone()[0] == "p"
        cur.execute("SELECT control, partition_interval, retention FROM partman.part_config"
                    " WHERE parent_table = %s", [history.parent_table()])
        assert cur.fetchone() == ("recorded_at", "1 day", "30 days")
    names = [name for name, _ in history.partitions()]
    assert names[-1] == history.DEFAULT_PARTITION
    assert day_name(datetime.now(UTC)) in names  # the ingest's today has its own partition


def test_maintain_creates_days_ahead_and_is_idempotent():
    assert day_name(NOW) not in dict(history.partitions())
    report = history.maintain(NOW)
    ahead = [day_name(NOW + timedelta(days=n)) for n in range(history.PREMAKE_DAYS + 1)]
    assert set(ahead) <= set(report.created)
    bounds = dict(history.partitions())
    assert bounds[day_name(NOW)] == "FOR VALUES FROM ('2031-03-10 00:00:00+00') TO ('2031-03-11 00:00:00+00')"
    assert insert_fix(DEVICE, NOW + timedelta(days=2, hours=5)) == day_name(NOW + timedelta(days=2))
    again = history.maintain(NOW)
    assert again.created == [] and again.dropped == []


def test_maintain_drops_whole_days_past_the_retention():
    history.maintain(NOW)
    kept_at = NOW + timedelta(days=1, hours=-2)          # 2031-03-11 10:00
    dropped_at = NOW - timedelta(hours=2)                # 2031-03-10 10:00
    for at in (dropped_at, kept_at):
        insert_fix(DEVICE, at)
    later = NOW + timedelta(days=31)                     # cutoff 2031-03-11 12:00
    report = history.maintain(later)
    # The 10th ended before the cutoff: dropped with its fix. The 11th ends after it: kept whole,
    # although part of it is older than the retention.
    assert day_name(NOW) in report.dropped
    assert day_name(kept_at) not in report.dropped
    assert partition_of(DEVICE, dropped_at) is None
    assert partition_of(DEVICE, kept_at) == day_name(kept_at)
    cutoff = later - timedelta(days=30)
    for name, bounds in history.partitions():
        if name != history.DEFAULT_PARTITION:
            upper = datetime.fromisoformat(bounds.split("TO ('")[1].rstrip("')"))
            assert upper >= cutoff, name
    assert day_name(later + timedelta(days=history.PREMAKE_DAYS)) in report.created


def test_maintain_uses_the_retention_setting(settings):
    settings.ONEMAP_FIX_RETENTION_DAYS = 3
    history.maintain(NOW)
    report = history.maintain(NOW + timedelta(days=4))  # cutoff 2031-03-11 12:00
    assert day_name(NOW) in report.dropped and day_name(NOW + timedelta(days=1)) not in report.dropped
    with connection.cursor() as cur:
        cur.execute("SELECT retention FROM partman.part_config WHERE parent_table = %s", [history.parent_table()])
        assert cur.fetchone()[0] == "3 days"


def test_maintain_empties_the_default_partition():
    recent, expired = NOW - timedelta(days=2), NOW - timedelta(days=40)
    assert insert_fix(DEVICE, recent) == history.DEFAULT_PARTITION  # no day for it yet
    assert insert_fix(DEVICE, expired) == history.DEFAULT_PARTITION
    report = history.maintain(NOW)
    assert (report.moved_from_default, report.expired_in_default) == (1, 1)
    assert partition_of(DEVICE, recent) == day_name(recent)
    assert partition_of(DEVICE, expired) is None
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {history.DEFAULT_PARTITION}")  # noqa: S608
        assert cur.fetchone()[0] == 0


def test_ingest_stays_idempotent_across_partitions_and_the_default():
    device = Officer.objects.order_by("id").values_list("device_id", flat=True).first()
    gateway = DeviceIdentity("history-test", gateway=True)
    history.maintain()  # today's partition, whenever the test database was migrated
    now = datetime.now(UTC).replace(microsecond=0)
    today_fix = {"device_id": device, "time": (now - timedelta(minutes=5)).isoformat(), "lon": 116.4, "lat": 39.9}
    # A late fix whose day has no partition (dropped here, in this transaction) lands in the default.
    two_days_ago = now - timedelta(days=2)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {day_name(two_days_ago)}")
    late_fix = {"device_id": device, "time": two_days_ago.isoformat(), "lon": 116.41, "lat": 39.91}
    first = do_ingest_fixes([today_fix, late_fix], gateway)
    assert [r["status"] for r in first.results] == [ACCEPTED, ACCEPTED]
    assert partition_of(device, now - timedelta(minutes=5)) == day_name(now)
    assert partition_of(device, two_days_ago) == history.DEFAULT_PARTITION
    retry = do_ingest_fixes([today_fix, late_fix], gateway)  # a client retrying after a lost answer
    assert [r["status"] for r in retry.results] == [DUPLICATE, DUPLICATE]
    assert history.maintain().moved_from_default == 1  # its day is made again and the fix moves there
    assert partition_of(device, two_days_ago) == day_name(two_days_ago)
    after_move = do_ingest_fixes([late_fix], gateway)
    assert [r["status"] for r in after_move.results] == [DUPLICATE]
    # Other tests' committed fixes of the same unit may lie in the window: count these two only.
    assert PositionFix.objects.filter(device_id=device, recorded_at__in=[now - timedelta(minutes=5),
                                                                       two_days_ago]).count() == 2


def scanned_relations(plan: object) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= scanned_relations(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= scanned_relations(item)
    return found


def test_a_track_reads_only_the_days_it_asks_for():
    history.maintain(NOW)
    day = NOW + timedelta(days=1)
    for minute in range(0, 60, 10):
        insert_fix(DEVICE, day.replace(hour=3, minute=minute))
    insert_fix(DEVICE, day + timedelta(days=1))  # the next day: outside the range
    insert_fix("HISTORY-TEST-2", day.replace(hour=3, minute=5))  # another device
    start, end = day.replace(hour=0), day.replace(hour=0) + timedelta(days=1)
    points = history.track(DEVICE, start, end)
    assert [p.recorded_at for p in points] == [day.replace(hour=3, minute=m) for m in range(0, 60, 10)]
    assert (points[0].lon, points[0].lat) == (116.4, 39.9)
    assert len(history.track(DEVICE, start, end, limit=2)) == 2
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + history.TRACK_SQL, [DEVICE, start, end, 10_000])
        plan = cur.fetchone()[0]
    assert scanned_relations(plan if not isinstance(plan, str) else json.loads(plan)) == {day_name(day)}
    # Two days asked, two partitions read (a Beijing day spans two UTC days).
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + history.TRACK_SQL, [DEVICE, start - timedelta(hours=8), end - timedelta(hours=8), 10])
        plan = cur.fetchone()[0]
    assert scanned_relations(plan if not isinstance(plan, str) else json.loads(plan)) == {day_name(NOW), day_name(day)}


def test_command_reports_and_refuses_a_bad_time():
    out = StringIO()
    call_command("history_maintain", "--now", NOW.isoformat(), "--list", stdout=out)
    report = json.loads(out.getvalue().splitlines()[0])
    assert day_name(NOW) in report["created"] and report["retention_days"] == 30
    assert day_name(NOW) in out.getvalue().split("\n", 1)[1]
    for bad in ("yesterday", "2031-03-10T12:00:00"):  # not a time; no offset
        with pytest.raises(CommandError) as raised:
            call_command("history_maintain", "--now", bad)
        assert raised.value.returncode == 2


def test_migration_converts_the_table_and_keeps_its_rows():
    """Back to the unpartitioned table and forward again, inside this test's transaction."""
    from django.db.migrations.executor import MigrationExecutor

    def migrate(target: str) -> None:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("geo", target)])

    now = datetime.now(UTC).replace(microsecond=0)
    migrate("0001_initial")
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE oid = 'geo_positionfix'::regclass")
        assert cur.fetchone()[0] == "r"
    times = [now - timedelta(days=2), now, now - timedelta(days=40)]  # the last is past the retention
    ids = [insert_fix(DEVICE, at) and PositionFix.objects.get(device_id=DEVICE, recorded_at=at).id for at in times]
    migrate("0002_positionfix_partitioned")
    assert [partition_of(DEVICE, at) for at in times] == [
        day_name(times[0]), day_name(now), history.DEFAULT_PARTITION]  # the next maintenance deletes the last
    assert sorted(PositionFix.objects.filter(device_id=DEVICE).values_list("id", flat=True)) == sorted(ids)
    new = PositionFix.objects.create(device_id=DEVICE, recorded_at=now + timedelta(seconds=1), received_at=now,
                                     geom="SRID=4490;POINT(116.4 39.9)")
    assert new.id > max(ids)  # the sequence carries on
    with connection.cursor() as cur:
        cur.execute("SELECT retention FROM partman.part_config WHERE parent_table = %s", [history.parent_table()])
        assert cur.fetchone()[0] == "30 days"
    assert history.maintain().expired_in_default == 1


def test_a_second_maintenance_at_once_skips_and_a_naive_now_is_refused():
    import psycopg

    settings = connection.settings_dict
    other = psycopg.connect(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"] or None,
                            port=settings["PORT"] or None, password=settings["PASSWORD"] or None, autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [history.LOCK_KEY])  # another runner at work
        report = history.maintain(NOW)
        assert report.skipped and report.created == []
        assert day_name(NOW) not in dict(history.partitions())
        other.execute("SELECT pg_advisory_unlock(%s)", [history.LOCK_KEY])
        assert day_name(NOW) in history.maintain(NOW).created
    finally:
        other.close()
    with pytest.raises(ValueError, match="aware"):
        history.maintain(datetime(2031, 3, 10, 12, 0))  # noqa: DTZ001 (the point of the test)


def test_command_gives_up_on_a_busy_history_in_one_line(monkeypatch):
    import psycopg

    monkeypatch.setattr(history, "LOCK_TIMEOUT", "200ms")
    settings = connection.settings_dict
    reader = psycopg.connect(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"] or None,
                             port=settings["PORT"] or None, password=settings["PASSWORD"] or None)
    try:
        reader.execute("SELECT count(*) FROM geo_positionfix")  # a long read: its transaction stays open
        with pytest.raises(CommandError, match="busy for 200ms") as raised:
            call_command("history_maintain", "--now", (NOW + timedelta(days=60)).isoformat())
        assert raised.value.returncode == 1
    finally:
        reader.close()
    assert day_name(NOW + timedelta(days=60)) not in dict(history.partitions())  # nothing changed
