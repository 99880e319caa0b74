"""Field units as screens see them: one record shape for snapshots and for live frames, and the
subscription (jurisdiction, bbox, layers) that decides which records a screen may see."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db import connection

from accounts.jurisdiction import Jurisdiction
from realtime.devices import UNIT_LABELS, UNIT_TABLES

LAYERS = {"officers": "officer", "vehicles": "vehicle"}
ALL_KINDS = frozenset(LAYERS.values())
# The position's time comes as ISO 8601 text and as epoch seconds, both made by PostgreSQL: loading
# a timestamptz into a datetime and formatting it back was a tenth of the server's CPU per fix at
# 2,000 fixes/s with 20 screens (py-spy, bench/RESULTS.md).
UNIT_COLUMNS = ("u.id, u.device_id, u.call_sign, u.{label}, u.district_id, u.street_id, ST_X(u.geom), ST_Y(u.geom),"
                " to_char(u.position_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
                " extract(epoch FROM u.position_at)::float8, u.speed, u.heading, u.accuracy")


def unit_record(kind: str, row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of UNIT_COLUMNS as a JSON-able record. `t` (epoch seconds) orders records of a unit;
    `stale` is added when the record is sent, because it depends on the time of sending."""
    unit_id, device_id, call_sign, label, district, street, x, y, at, t, speed, heading, accuracy = row
    return {
        "key": f"{kind}:{unit_id}", "kind": kind, "id": unit_id, "device_id": device_id,
        "call_sign": call_sign, "label": label, "district": district, "street": street,
        "lon": round(x, 7), "lat": round(y, 7), "at": at, "t": t,
        "speed": None if speed is None else round(speed, 2),
        "heading": None if heading is None else round(heading, 1),
        "accuracy": None if accuracy is None else round(accuracy, 1),
    }


class SubscriptionInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Subscription:
    scope: Jurisdiction  # the user's jurisdiction, possibly narrowed by the request
    bbox: tuple[float, float, float, float] | None = None
    kinds: frozenset[str] = ALL_KINDS
    # The `tasks` layer: dispatch tasks as `task` messages beside the unit frames (realtime/README.md).
    tasks: bool = False

    def sees_place(self, district: str | None, street: str | None) -> bool:
        """Is a place of this district and street inside the subscription's scope?"""
        if self.scope.level == "city":
            return True
        if self.scope.level == "district":
            return district == self.scope.district
        return self.scope.level == "street" and street == self.scope.street

    def in_scope(self, record: dict[str, Any]) -> bool:
        if record["kind"] not in self.kinds:
            return False
        if self.scope.level == "city":
            return True
        if self.scope.level == "district":
            return record["district"] == self.scope.district
        if self.scope.level == "street":
            return record["street"] == self.scope.street
        return False

    def in_view(self, record: dict[str, Any]) -> bool:
        if self.bbox is None:
            return True
        west, south, east, north = self.bbox
        return west <= record["lon"] <= east and south <= record["lat"] <= north

    def to_json(self) -> dict[str, Any]:
        layers = [layer for layer, kind in LAYERS.items() if kind in self.kinds] + (["tasks"] if self.tasks else [])
        return {"scope": self.scope.label, "bbox": list(self.bbox) if self.bbox else None, "layers": sorted(layers)}


def _degrees(value: Any) -> float | None:
    """A finite float from a JSON number; None for anything else (an int beyond a double too)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def check_subscription(message: dict[str, Any], allowed: Jurisdiction) -> Subscription:
    """A screen's request narrowed to what its user may see; asking for more is an error."""
    if allowed.level == "none":
        raise SubscriptionInvalid("this account has no jurisdiction")
    scope = allowed
    street, district = message.get("street"), message.get("district")
    if street is not None:
        if not isinstance(street, str) or not street.isdigit() or len(street) != 9:
            raise SubscriptionInvalid("street is a 9-digit code")
        if not (allowed.level == "city" or allowed.district == street[:6] and allowed.level == "district"
                or allowed.street == street):
            raise SubscriptionInvalid(f"street {street} is outside this account's jurisdiction ({allowed.label})")
        scope = Jurisdiction("street", district=street[:6], street=street)
    elif district is not None:
        if not isinstance(district, str) or not district.isdigit() or len(district) != 6:
            raise SubscriptionInvalid("district is a 6-digit code")
        if allowed.level == "street" and allowed.district == district:
            pass  # a street dispatcher asking for its district keeps its street
        elif allowed.level == "city" or allowed.district == district:
            scope = Jurisdiction("district", district=district)
        else:
            raise SubscriptionInvalid(f"district {district} is outside this account's jurisdiction ({allowed.label})")
    bbox = message.get("bbox")
    if bbox is not None:
        degrees = [d for v in bbox if (d := _degrees(v)) is not None] if isinstance(bbox, list) and len(bbox) == 4 else []
        if len(degrees) != 4:
            raise SubscriptionInvalid("bbox is [west, south, east, north] in degrees")
        west, south, east, north = degrees
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise SubscriptionInvalid("bbox needs west < east and south < north, in lon/lat range")
        bbox = (west, south, east, north)
    layers = message.get("layers", list(LAYERS))
    # isinstance first: a list or an object is unhashable, and `in LAYERS` would raise.
    if not isinstance(layers, list) or not layers or any(not isinstance(layer, str) or layer not in LAYERS
                                                         for layer in layers):
        raise SubscriptionInvalid(f"layers is a non-empty list of {', '.join(LAYERS)}")
    return Subscription(scope, bbox, frozenset(LAYERS[layer] for layer in layers))


def load_snapshot(sub: Subscription) -> list[dict[str, Any]]:
    """Every unit the subscription sees, with its latest position, straight from the tables."""
    records: list[dict[str, Any]] = []
    params: list[Any]  # the scope's string parameters, then the bbox's floats
    with connection.cursor() as cursor:
        for kind, table in UNIT_TABLES.items():
            if kind not in sub.kinds:
                continue
            where, params = sub.scope.sql("u")
            sql = f"SELECT {UNIT_COLUMNS.format(label=UNIT_LABELS[kind])} FROM {table} u WHERE u.position_at IS NOT NULL AND {where}"  # noqa: S608 (whitelisted identifiers)
            if sub.bbox:
                sql += " AND ST_X(u.geom) BETWEEN %s AND %s AND ST_Y(u.geom) BETWEEN %s AND %s"
                pad = 1e-6  # the exact test is in_view below, on rounded coordinates
                params = [*params, sub.bbox[0] - pad, sub.bbox[2] + pad, sub.bbox[1] - pad, sub.bbox[3] + pad]
            cursor.execute(sql + " ORDER BY u.id", params)
            records.extend(unit_record(kind, row) for row in cursor.fetchall())
    # Rounded lon/lat decide bbox membership in frames; apply the same rule here.
    return [r for r in records if sub.in_view(r)]


def is_stale(record: dict[str, Any], now: float, stale_after: float) -> bool:
    return record["t"] < now - stale_after


def district_codes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM geo_district ORDER BY code")
        return [row[0] for row in cursor.fetchall()]
