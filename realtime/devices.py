"""Who is reporting: device credentials (issue, verify) and the field units behind device ids."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from realtime import conf
from realtime.models import DEVICE_TOKEN_PREFIX, DeviceCredential, hash_device_token

# The two tables of field units. Identifiers come from this whitelist, never from input.
UNIT_TABLES = {"officer": "geo_officer", "vehicle": "geo_vehicle"}
# Label columns: an officer's name, a vehicle's plate.
UNIT_LABELS = {"officer": "name", "vehicle": "plate"}


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What a valid device token proves: one device, or a gateway allowed to report for any."""

    device_id: str
    gateway: bool = False

    def may_report(self, device_id: str) -> bool:
        return self.gateway or device_id == self.device_id


@dataclass(frozen=True, slots=True)
class KnownDevice:
    kind: str  # "officer" | "vehicle"
    unit_id: int
    district: str
    street: str | None


# Verifying a token is a hash and an indexed look-up; the cache spares the look-up on every
# request of a busy device. Revocation takes effect within TOKEN_CACHE_S.
_token_cache: dict[str, tuple[float, DeviceIdentity | None]] = {}


def authenticate_device(raw: str | None) -> DeviceIdentity | None:
    if not raw or not raw.startswith(DEVICE_TOKEN_PREFIX) or len(raw) > 128:
        return None
    key = hash_device_token(raw)
    now = time.monotonic()
    cached = _token_cache.get(key)
    if cached and cached[0] > now:
        return cached[1]
    row = DeviceCredential.objects.filter(key_hash=key, revoked=False).values_list("device_id", "gateway").first()
    identity = DeviceIdentity(row[0], row[1]) if row else None
    if len(_token_cache) > 50_000:
        _token_cache.clear()
    _token_cache[key] = (now + conf.get("TOKEN_CACHE_S"), identity)
    return identity


def forget_cached_tokens() -> None:
    _token_cache.clear()


def issue_device_token(device_id: str, *, gateway: bool = False) -> str:
    raw = DeviceCredential.new_raw_token()
    DeviceCredential.objects.create(device_id=device_id, gateway=gateway, key_hash=hash_device_token(raw))
    return raw


def issue_device_tokens(device_ids: Iterable[str]) -> dict[str, str]:
    """Many devices at once (the simulator, a roll-out): one INSERT."""
    raws = {device_id: DeviceCredential.new_raw_token() for device_id in device_ids}
    DeviceCredential.objects.bulk_create(
        [DeviceCredential(device_id=d, key_hash=hash_device_token(r)) for d, r in raws.items()], batch_size=2000)
    return raws


def known_devices(device_ids: Iterable[str]) -> dict[str, KnownDevice]:
    """The field unit behind each device id; ids nobody carries are absent."""
    ids = list(set(device_ids))
    if not ids:
        return {}
    # The ids as one JSON parameter, not a text[]: psycopg quotes array elements one by one in Python.
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH ids AS (SELECT json_array_elements_text(%s::json) AS device_id)"
            " SELECT 'officer', id, device_id, district_id, street_id FROM geo_officer"
            " WHERE device_id IN (SELECT device_id FROM ids)"
            " UNION ALL "
            "SELECT 'vehicle', id, device_id, district_id, street_id FROM geo_vehicle"
            " WHERE device_id IN (SELECT device_id FROM ids)",
            [json.dumps(ids)],
        )
        return {row[2]: KnownDevice(row[0], row[1], row[3], row[4]) for row in cursor.fetchall()}


def all_device_ids() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT device_id FROM geo_officer UNION ALL SELECT device_id FROM geo_vehicle ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]
