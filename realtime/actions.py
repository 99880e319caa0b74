"""The write paths of realtime: position fixes in, pushes out. Views, consumers and commands call
these and nothing else writes the tables. `check_*` validates; `do_*` writes and sends the event
after commit through `realtime.events.send_event`."""

from __future__ import annotations

import json
import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from config import jsonparse, metrics, prepared
from geo.crs import webmaps
from realtime import conf
from realtime.devices import UNIT_LABELS, UNIT_TABLES, DeviceIdentity, KnownDevice, known_devices
from realtime.events import send_district_events, send_event
from realtime.fixes import DEVICE_ID_RE, Fix, FixRejected, parse_fix
from realtime.models import Push
from realtime.units import UNIT_COLUMNS, unit_record

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
MAX_PUSH_PAYLOAD_BYTES = 16 * 1024
DEADLOCK_RETRIES = 3


@dataclass
class IngestReport:
    results: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)

    def summary(self) -> dict[str, Any]:
        return {"accepted": self.count(ACCEPTED), "duplicates": self.count(DUPLICATE),
                "rejected": self.count(REJECTED), "results": self.results}


def _to_wgs84(fixes: list[Fix]) -> None:
    """GCJ-02 / BD-09 input converted in place, one vectorised call per system."""
    for crs, inverse in (("gcj02", webmaps.gcj02_to_wgs84), ("bd09", webmaps.bd09_to_wgs84)):
        group = [f for f in fixes if f.crs == crs]
        if group:
            lon, lat = inverse(np.array([f.lon for f in group]), np.array([f.lat for f in group]))
            for f, x, y in zip(group, lon.tolist(), lat.tolist(), strict=True):
                f.lon, f.lat, f.crs = x, y, "wgs84"


def check_fixes(raw_fixes: list[Any], identity: DeviceIdentity, *, default_crs: str = "wgs84",
                now: datetime | None = None) -> tuple[list[tuple[int, Fix, KnownDevice]], list[dict[str, Any] | None]]:
    """Every input fix gets either a place in the returned valid list or a rejection result."""
    now = now or timezone.now()
    oldest = now - timedelta(days=conf.get("FIX_RETENTION_DAYS"))
    newest = now + timedelta(seconds=conf.get("FIX_MAX_FUTURE_S"))
    west, south, east, north = conf.get("SERVICE_AREA")
    results: list[dict[str, Any] | None] = [None] * len(raw_fixes)
    parsed: list[tuple[int, Fix]] = []
    for index, raw in enumerate(raw_fixes):
        try:
            fix = parse_fix(raw, default_crs)
            if not identity.may_report(fix.device_id):
                raise FixRejected("device_not_allowed", "this token may report only its own device")
            if fix.recorded_at > newest:
                raise FixRejected("time_in_future", f"time is more than {conf.get('FIX_MAX_FUTURE_S')} s ahead")
            if fix.recorded_at < oldest:
                raise FixRejected("too_old", f"time is older than the {conf.get('FIX_RETENTION_DAYS')}-day retention")
            parsed.append((index, fix))
        except FixRejected as rejected:
            results[index] = {"index": index, "status": REJECTED, "reason": rejected.reason, "detail": rejected.detail}
    _to_wgs84([fix for _, fix in parsed])
    devices = known_devices(fix.device_id for _, fix in parsed)
    valid: list[tuple[int, Fix, KnownDevice]] = []
    for index, fix in parsed:
        device = devices.get(fix.device_id)
        if device is None:
            results[index] = {"index": index, "status": REJECTED, "reason": "unknown_device",
                              "detail": f"no officer or vehicle carries device {fix.device_id}"}
        elif not (west <= fix.lon <= east and south <= fix.lat <= north):
            results[index] = {"index": index, "status": REJECTED, "reason": "outside_service_area",
                              "detail": "the fix lies far outside Beijing (see realtime/README.md)"}
        else:
            valid.append((index, fix, device))
    return valid, results


def _rows_json(fixes: list[Fix]) -> str:
    """The fixes as one JSON array of rows: the single parameter of STORE_FIXES.

    One text parameter instead of eight arrays: psycopg quotes array elements one by one in
    Python (a regular expression per element), which was about a third of the CPU time of an
    ingest request (bench/RESULTS.md); json.dumps runs in C. Floats round-trip exactly (shortest
    repr), times are ISO 8601 with their offset and microseconds."""
    rows = [[f.device_id, f.recorded_at.isoformat(), f.lon, f.lat, f.speed, f.heading, f.accuracy, f.battery]
            for f in fixes]
    return json.dumps(rows, allow_nan=False)


# One statement stores a batch: the history rows (idempotent on device and time), then each unit
# table's latest position from the newest stored fix of each device — one round trip, and atomic
# without a transaction block around it (a single-fix OsmAnd request used to take five: the
# device look-up, BEGIN, INSERT, UPDATE, COMMIT). The latest position moves only forwards: the
# guard holds under concurrency because the UPDATE re-checks it on the newest row version, and
# rows are locked in id order so that two batches touching the same units cannot deadlock.
STORE_FIXES = """
WITH f AS (
    SELECT e->>0 AS device_id, (e->>1)::timestamptz AS recorded_at, (e->>2)::float8 AS lon,
           (e->>3)::float8 AS lat, (e->>4)::float8 AS speed, (e->>5)::float8 AS heading,
           (e->>6)::float8 AS accuracy, (e->>7)::float8 AS battery
    FROM json_array_elements(%s::json) AS e
), ins AS (
    INSERT INTO geo_positionfix (device_id, recorded_at, received_at, geom, speed, heading, accuracy, battery)
    SELECT f.device_id, f.recorded_at, now(), ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4490),
           f.speed, f.heading, f.accuracy, f.battery
    FROM f ORDER BY f.device_id, f.recorded_at
    ON CONFLICT (device_id, recorded_at) DO NOTHING
    RETURNING device_id, recorded_at, geom, speed, heading, accuracy
), latest AS (
    SELECT DISTINCT ON (ins.device_id) ins.* FROM ins ORDER BY ins.device_id, ins.recorded_at DESC
){unit_ctes}
SELECT (SELECT coalesce(json_agg(json_build_array(ins.device_id,
                                                  (extract(epoch FROM ins.recorded_at) * 1000000)::bigint)), '[]')
        FROM ins){unit_results}
"""
UNIT_CTE = """, locked_{kind} AS (
    SELECT u.id FROM {table} u JOIN latest ON u.device_id = latest.device_id
    WHERE u.position_at IS NULL OR u.position_at < latest.recorded_at
    ORDER BY u.id FOR UPDATE OF u
), moved_{kind} AS (
    UPDATE {table} u
    SET geom = latest.geom, position_at = latest.recorded_at,
        speed = latest.speed, heading = latest.heading, accuracy = latest.accuracy
    FROM latest, locked_{kind}
    WHERE u.id = locked_{kind}.id AND u.device_id = latest.device_id
      AND (u.position_at IS NULL OR u.position_at < latest.recorded_at)
    RETURNING {columns}
)"""
STORE_SQL = STORE_FIXES.format(
    unit_ctes="".join(UNIT_CTE.format(kind=kind, table=table, columns=UNIT_COLUMNS.format(label=UNIT_LABELS[kind]))
                      for kind, table in UNIT_TABLES.items()),
    # json_agg(m): one JSON object per moved unit, its values in UNIT_COLUMNS' order (the columns'
    # names are distinct).
    unit_results="".join(f",\n       (SELECT coalesce(json_agg(m), '[]') FROM moved_{kind} m)"  # noqa: S608 (registry names)
                         for kind in UNIT_TABLES))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _store(valid: list[tuple[int, Fix, KnownDevice]]) -> tuple[set[tuple[str, int]], list[dict[str, Any]]]:
    """Store the fixes; return the (device, epoch µs) of those stored and the units they moved."""
    with connection.cursor() as cursor:
        cursor.execute(STORE_SQL, [_rows_json([fix for _, fix, _ in valid])])
        row = cursor.fetchone()
    inserted = {(device_id, micros) for device_id, micros in row[0]}
    records = [unit_record(kind, tuple(unit.values()))
               for kind, units in zip(UNIT_TABLES, row[1:], strict=True) for unit in units]
    return inserted, records


def do_ingest_fixes(raw_fixes: list[Any], identity: DeviceIdentity, *, default_crs: str = "wgs84") -> IngestReport:
    """Validate, store idempotently, move latest positions forward, and publish what moved.

    Returns one result per input fix, in input order. When it returns, everything accepted is
    committed (a 2xx built from it means committed)."""
    valid, results = check_fixes(raw_fixes, identity, default_crs=default_crs)
    # The same (device, time) twice in one batch: the first is stored, the rest are duplicates.
    seen: set[tuple[str, datetime]] = set()
    unique: list[tuple[int, Fix, KnownDevice]] = []
    for index, fix, device in valid:
        key = (fix.device_id, fix.recorded_at)
        if key in seen:
            results[index] = {"index": index, "status": DUPLICATE}
        else:
            seen.add(key)
            unique.append((index, fix, device))
    inserted: set[tuple[str, int]] = set()
    if unique:
        for attempt in range(DEADLOCK_RETRIES):
            try:
                # One statement is atomic on its own; inside a caller's transaction, a savepoint
                # keeps a retry possible.
                with transaction.atomic() if connection.in_atomic_block else nullcontext():
                    inserted, records = _store(unique)
                    by_district: dict[str, list[dict[str, Any]]] = {}
                    for record in records:
                        by_district.setdefault(record["district"], []).append(record)
                    send_district_events("positions", by_district)  # after commit, one hop for all
                break
            except OperationalError as error:  # a deadlock or serialization failure: try again
                if attempt == DEADLOCK_RETRIES - 1 or getattr(error.__cause__, "sqlstate", "") not in {"40P01", "40001"}:
                    raise
                log.warning("ingest: retrying after %s", error.__cause__)
    for index, fix, _ in unique:
        status = ACCEPTED if (fix.device_id, _micros(fix.recorded_at)) in inserted else DUPLICATE
        results[index] = {"index": index, "status": status}
    report = IngestReport([r for r in results if r is not None])
    metrics.count_fixes(report.results)
    assert len(report.results) == len(raw_fixes), "every fix gets a result"
    return report


# --- pushes to field units -------------------------------------------------------------------


class PushInvalid(ValueError):
    pass


def push_message(push: Push) -> dict[str, Any]:
    return {"type": "push", "id": str(push.id), "kind": push.kind, "payload": push.payload,
            "created_at": push.created_at.isoformat()}


def check_push(device_id: str, kind: str, payload: Any) -> KnownDevice:
    """What jsonb and the device's app can take: the API's parser already refused the rest, but
    pushes are also made in Python (commands, dispatch), where NaN or a NUL would fail only at
    the INSERT."""
    check_push_message(device_id, kind, payload)
    device = known_devices([device_id]).get(device_id)
    if device is None:
        raise PushInvalid(f"no officer or vehicle carries device {device_id}")
    return device


def check_push_message(device_id: str, kind: str, payload: Any) -> None:
    if not isinstance(device_id, str) or not DEVICE_ID_RE.fullmatch(device_id):
        raise PushInvalid("device_id is 1-64 printable ASCII characters without spaces")
    if not isinstance(kind, str) or kind not in Push.Kind.values:
        raise PushInvalid(f"kind must be one of {', '.join(Push.Kind.values)}")
    if not isinstance(payload, dict):
        raise PushInvalid("payload must be a JSON object")
    try:
        jsonparse.check_tree(payload)  # depth, NUL, lone surrogates
        size = len(json.dumps(payload, ensure_ascii=False, allow_nan=False).encode())
    except jsonparse.JsonInvalid as error:
        raise PushInvalid(f"payload: {error.detail}") from None
    except (ValueError, TypeError, RecursionError) as error:  # NaN/Infinity, or not JSON at all
        raise PushInvalid(f"payload is not JSON: {str(error)[:100]}") from None
    if size > MAX_PUSH_PAYLOAD_BYTES:
        raise PushInvalid(f"payload is larger than {MAX_PUSH_PAYLOAD_BYTES} bytes")


def do_send_push(device_id: str, kind: str, payload: dict[str, Any], *, created_by: str = "",
                 device_known: bool = False) -> Push:
    """Store a push and send it to the device's app; it stays pending until acknowledged.
    `device_known`: the caller has just read the device from its unit's row (dispatch), so it is
    not looked up again. Inside a caller's transaction the push is part of it (no savepoint): a
    push that cannot be stored fails the change that made it."""
    if device_known:
        check_push_message(device_id, kind, payload)
    else:
        check_push(device_id, kind, payload)
    with transaction.atomic(savepoint=False):
        push = Push(device_id=device_id, kind=kind, payload=payload, created_by=created_by)
        prepared.insert(push)
        send_event("push", push_message(push), device=device_id)
    return push


def pending_pushes(device_id: str) -> list[Push]:
    return list(Push.objects.filter(device_id=device_id, acked_at__isnull=True).order_by("created_at"))


def do_mark_delivered(push_ids: list[str]) -> None:
    """Record a (re)delivery: the first delivery time is kept, attempts counts every one."""
    if not push_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE realtime_push SET attempts = attempts + 1, delivered_at = COALESCE(delivered_at, now()),"
            " last_delivered_at = now() WHERE id = ANY(%s::uuid[]) AND acked_at IS NULL",
            [push_ids],
        )


def do_ack_push(device_id: str, push_id: Any) -> Push:
    """Idempotent: a second acknowledgement keeps the first time."""
    try:
        key = uuid.UUID(str(push_id))
    except ValueError:
        raise PushInvalid("id is not a push id") from None
    with transaction.atomic():
        push = Push.objects.select_for_update().filter(id=key, device_id=device_id).first()
        if push is None:
            raise PushInvalid("no such push for this device")
        if push.acked_at is None:
            push.acked_at = timezone.now()
            push.save(update_fields=["acked_at"])
    return push
