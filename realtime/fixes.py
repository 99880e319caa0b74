"""Parsing one reported fix: every field checked, every failure named.

A fix arrives as a dict (a JSON object of the batch API or the field socket, or the query
parameters of the OsmAnd protocol already mapped to our names). `parse_fix` returns a `Fix` or
raises `FixRejected` with a machine-readable reason and a human-readable detail."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CRS_NAMES = ("wgs84", "gcj02", "bd09")
# Printable ASCII without spaces: IMEIs, OFF-000001, a phone's generated id.
DEVICE_ID_RE = re.compile(r"^[\x21-\x7e]{1,64}$")
# Beyond this an epoch number is taken as milliseconds (1e11 s is the year 5138).
EPOCH_MS_THRESHOLD = 1e11


class FixRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Fix:
    device_id: str
    recorded_at: datetime
    lon: float
    lat: float
    speed: float | None = None  # m/s
    heading: float | None = None  # degrees clockwise from north, [0, 360)
    accuracy: float | None = None  # metres
    battery: float | None = None  # percent, 0-100
    crs: str = "wgs84"


def _first(raw: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in raw and raw[name] is not None and raw[name] != "":
            return raw[name]
    return None


def _number(value: Any, field: str) -> float:
    """A finite float from a JSON number or a numeric string (query parameters are strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FixRejected("invalid_" + field, f"{field} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise FixRejected("invalid_" + field, f"{field} is not a number: {str(value)[:40]!r}") from None
    except OverflowError:  # an int beyond a double (the JSON parser allows 64 digits, Python callers any)
        raise FixRejected("invalid_" + field, f"{field} is out of range") from None
    if not math.isfinite(number):
        raise FixRejected("invalid_" + field, f"{field} must be finite, not {number}")
    return number


def _optional(raw: dict[str, Any], field: str, *names: str) -> float | None:
    value = _first(raw, *names)
    return None if value is None else _number(value, field)


def parse_time(value: Any) -> datetime:
    """ISO 8601 (a missing offset means UTC, as Traccar reads it), or epoch seconds or milliseconds."""
    if value is None:
        raise FixRejected("missing_time", "a fix needs its time (time, ISO 8601 or epoch seconds)")
    if isinstance(value, str) and not re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise FixRejected("invalid_time", f"time is neither ISO 8601 nor epoch seconds: {value[:40]!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    seconds = _number(value, "time")
    if abs(seconds) >= EPOCH_MS_THRESHOLD:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise FixRejected("invalid_time", f"time out of range: {value}") from None


def parse_fix(raw: Any, default_crs: str = "wgs84") -> Fix:
    if not isinstance(raw, dict):
        raise FixRejected("malformed_fix", f"a fix is a JSON object, not {type(raw).__name__}")
    device = _first(raw, "device_id", "device", "id")
    if device is None:
        raise FixRejected("missing_device_id", "a fix needs device_id")
    if isinstance(device, bool) or not isinstance(device, str | int):
        raise FixRejected("invalid_device_id", "device_id must be a string")
    device = str(device)
    if not DEVICE_ID_RE.fullmatch(device):  # (match would let a trailing newline through)
        raise FixRejected("invalid_device_id", "device_id is 1-64 printable ASCII characters without spaces")
    recorded_at = parse_time(_first(raw, "time", "recorded_at", "timestamp"))
    lon_raw, lat_raw = _first(raw, "lon", "longitude"), _first(raw, "lat", "latitude")
    if lon_raw is None or lat_raw is None:
        raise FixRejected("missing_coordinates", "a fix needs lon and lat")
    lon, lat = _number(lon_raw, "coordinates"), _number(lat_raw, "coordinates")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise FixRejected("coordinates_out_of_range", f"lon {lon} / lat {lat} is not on the earth")
    crs = raw.get("crs", default_crs)
    if crs not in CRS_NAMES:
        raise FixRejected("invalid_crs", f"crs must be one of {', '.join(CRS_NAMES)}")
    speed = _optional(raw, "speed", "speed")
    heading = _optional(raw, "heading", "heading", "bearing", "course")
    accuracy = _optional(raw, "accuracy", "accuracy")
    battery = _optional(raw, "battery", "battery", "batt")
    # Phones report -1 for "unknown" speed and course (iOS does): keep the fix, drop the value.
    if speed is not None and speed < 0:
        speed = None
    if heading is not None:
        heading = None if heading < 0 else heading % 360.0
    if accuracy is not None and accuracy < 0:
        accuracy = None
    if speed is not None and speed > 150:  # 540 km/h: no unit of the bureau moves that fast
        raise FixRejected("invalid_speed", f"speed {speed} m/s is implausible")
    if battery is not None and not 0 <= battery <= 100:
        raise FixRejected("invalid_battery", "battery is a percentage, 0-100")
    return Fix(device, recorded_at, lon, lat, speed, heading, accuracy, battery, crs)
