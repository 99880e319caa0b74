"""Test support for dispatch: the demo accounts of Dongcheng, a verifier, a point inside 东华门街道,
and officers placed where a test wants them (through the real ingest, so fixes are in the history)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from accounts.models import Profile, Role
from command.models import Assignment
from geo.models import Officer
from realtime.actions import do_ingest_fixes
from realtime.devices import DeviceIdentity

STREET = "110101001"  # 东华门街道
OTHER_STREET = "110101002"
DISTRICT = "110101"
GATEWAY = DeviceIdentity("test-gateway", gateway=True)


@dataclass
class Dongcheng:
    lon: float
    lat: float
    officer1: Officer
    officer2: Officer
    clients: dict[str, Client]

    def api(self, who: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
        client = self.clients[who]
        kwargs: dict[str, Any] = {"headers": headers} if headers else {}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        response = getattr(client, method)(path, **kwargs)
        return response


def place_officer(officer: Officer, lon: float, lat: float, at: datetime | None = None) -> None:
    at = at or datetime.now(UTC)
    report = do_ingest_fixes([{"device_id": officer.device_id, "time": at.isoformat(), "lon": lon, "lat": lat}],
                             GATEWAY)
    assert report.results[0]["status"] == "accepted", report.results


def offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    import math

    return lon + east_m / (111_320 * math.cos(math.radians(lat))), lat + north_m / 110_540


def point_in_street(street: str) -> tuple[float, float]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM geo_gridcell"
                       " WHERE street_id = %s ORDER BY code LIMIT 1) s", [street])
        lon, lat = cursor.fetchone()
    return lon, lat


def client_for(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.fixture
def dongcheng(db) -> Dongcheng:  # type: ignore[no-untyped-def]
    # Every unit starts stale, so only the units a test places are recommended.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE geo_officer SET position_at = now() - interval '1 day'"
                       " WHERE position_at > now() - interval '1 day'")
        cursor.execute("UPDATE geo_vehicle SET position_at = now() - interval '1 day'"
                       " WHERE position_at > now() - interval '1 day'")
    user_model = get_user_model()
    verifier, _ = user_model.objects.get_or_create(username="test_verifier")
    Profile.objects.update_or_create(user=verifier, defaults={"role": Role.VERIFIER, "district_id": DISTRICT})
    lon, lat = point_in_street(STREET)
    officer1 = Officer.objects.get(profile__user__username="officer1")
    officer2 = Officer.objects.get(profile__user__username="officer2")
    # Tasks that other tests committed (browser tests) must not weigh on the ranking: no workload.
    Assignment.objects.filter(unit_kind="officer", unit_id__in=[officer1.pk, officer2.pk]).update(active=False)
    clients = {name: client_for(name) for name in
               ("commander", "dongcheng", "donghuamen", "officer1", "officer2", "wall", "test_verifier")}
    return Dongcheng(lon, lat, officer1, officer2, clients)


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
