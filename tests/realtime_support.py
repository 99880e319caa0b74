"""Test support for the realtime tests: a small world of our own (two made-up districts, their
streets, officers, vehicles, users and tokens), committed for real so that on_commit fires and
other server processes can see it, and removed again afterwards.

How: the tests carry `django_db` (so pytest-django sets up the test database), but nothing of
theirs writes on the main thread, whose connection sits in the test-case transaction. Writes run
on a worker thread (`in_db_thread`) or in the server's own threads (ASGI views and
database_sync_to_async), each with its own autocommit connection. Nothing is flushed, so the
shared fixtures that conftest loads stay intact for other test modules."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.layers import channel_layers
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import MultiPolygon, Polygon

from accounts.models import ApiToken, Profile, Role
from geo.models import District, EnforcementUnit, Officer, PositionFix, Street, Vehicle
from realtime.devices import DeviceIdentity, forget_cached_tokens, issue_device_token
from realtime.models import DeviceCredential, Push

# Made-up district codes (no real Beijing district uses them), side by side south-west of the centre.
DISTRICT_A, DISTRICT_B = "110198", "110199"
STREET_A1, STREET_A2, STREET_B1 = "110198001", "110198002", "110199001"
BOX = {DISTRICT_A: (116.20, 39.80, 116.30, 39.90), DISTRICT_B: (116.30, 39.80, 116.40, 39.90)}
WAIT = 10.0  # seconds: the longest any test waits for a message that must come


def square(west: float, south: float, east: float, north: float) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((west, south, east, north)), srid=4490)


@dataclass
class World:
    tag: str
    officers: dict[str, Officer] = field(default_factory=dict)  # by name: a1, a2, b1
    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    api_tokens: dict[str, str] = field(default_factory=dict)
    device_tokens: dict[str, str] = field(default_factory=dict)  # by device id
    gateway_token: str = ""

    @property
    def gateway(self) -> DeviceIdentity:
        return DeviceIdentity("test-gateway", gateway=True)

    def device_ids(self) -> list[str]:
        return [u.device_id for u in [*self.officers.values(), *self.vehicles.values()]]


def _make_world() -> World:
    tag = uuid.uuid4().hex[:6].upper()
    world = World(tag)
    unit, _ = EnforcementUnit.objects.get_or_create(code="T98", defaults={"name": "测试执法队 test unit"})
    # Units left in our made-up districts by an interrupted run: nobody else uses these codes.
    for model in (Officer, Vehicle):
        leftovers = list(model.objects.filter(district_id__in=BOX).values_list("device_id", flat=True))
        PositionFix.objects.filter(device_id__in=leftovers).delete()
        Push.objects.filter(device_id__in=leftovers).delete()
        Profile.objects.filter(officer__device_id__in=leftovers).delete()
        model.objects.filter(device_id__in=leftovers).delete()
    for code, box in BOX.items():
        District.objects.update_or_create(code=code, defaults={"name": f"测试区{code}", "geom": square(*box)})
    west, south, east, north = BOX[DISTRICT_A]
    mid = (west + east) / 2
    streets = {STREET_A1: (DISTRICT_A, (west, south, mid, north)), STREET_A2: (DISTRICT_A, (mid, south, east, north)),
               STREET_B1: (DISTRICT_B, BOX[DISTRICT_B])}
    for code, (district, box) in streets.items():
        Street.objects.update_or_create(code=code, defaults={
            "name": f"测试街道{code}", "kind": Street.Kind.STREET, "district_id": district, "geom": square(*box)})
    placement = {"a1": (DISTRICT_A, STREET_A1), "a2": (DISTRICT_A, STREET_A2), "b1": (DISTRICT_B, STREET_B1)}
    for name, (district, street) in placement.items():
        world.officers[name] = Officer.objects.create(
            unit=unit, district_id=district, street_id=street, call_sign=f"T{tag}-O-{name}",
            device_id=f"T{tag}-OFF-{name}", name=f"队员{name}", badge=f"T{tag}{name}")
        world.vehicles[name] = Vehicle.objects.create(
            unit=unit, district_id=district, street_id=street, call_sign=f"T{tag}-V-{name}",
            device_id=f"T{tag}-VEH-{name}", plate=f"京T{tag}{name}", kind=Vehicle.Kind.PATROL_CAR)
    accounts = {
        "city": (Role.CITY_COMMANDER, None, None, None),
        "district_a": (Role.DISTRICT_DISPATCHER, DISTRICT_A, None, None),
        "district_b": (Role.DISTRICT_DISPATCHER, DISTRICT_B, None, None),
        "street_a1": (Role.STREET_DISPATCHER, DISTRICT_A, STREET_A1, None),
        "officer_a1": (Role.FIELD_OFFICER, DISTRICT_A, STREET_A1, world.officers["a1"]),
    }
    for name, (role, scope_district, scope_street, officer) in accounts.items():
        user = get_user_model().objects.create_user(f"t{tag.lower()}_{name}")  # no password: tokens only, no slow hashing
        Profile.objects.create(user=user, role=role, district_id=scope_district, street_id=scope_street, officer=officer)
        world.users[name] = user
        world.api_tokens[name] = ApiToken.issue(user, "test")[1]
    for device_id in world.device_ids():
        world.device_tokens[device_id] = issue_device_token(device_id)
    world.gateway_token = issue_device_token(f"T{tag}-gateway", gateway=True)
    return world


def _remove_world(world: World) -> None:
    devices = world.device_ids()
    PositionFix.objects.filter(device_id__in=devices).delete()
    Push.objects.filter(device_id__in=devices).delete()
    DeviceCredential.objects.filter(device_id__startswith=f"T{world.tag}").delete()
    get_user_model().objects.filter(username__startswith=f"t{world.tag.lower()}_").delete()
    Officer.objects.filter(device_id__in=devices).delete()
    Vehicle.objects.filter(device_id__in=devices).delete()
    # The made-up geography goes too: other test modules count the real fixtures (16 districts).
    Street.objects.filter(code__in=[STREET_A1, STREET_A2, STREET_B1]).delete()
    District.objects.filter(code__in=list(BOX)).delete()
    EnforcementUnit.objects.filter(code="T98").delete()
    forget_cached_tokens()


_db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-db")


def in_db_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run fn on the worker thread: its connection autocommits, so everyone sees the result."""
    return _db_thread.submit(fn, *args, **kwargs).result(timeout=120)


@pytest.fixture
def world(django_db_blocker):  # type: ignore[no-untyped-def]
    """Committed rows (made on the worker thread); removed after the test."""
    with django_db_blocker.unblock():
        made = in_db_thread(_make_world)
        channel_layers.backends.clear()  # a fresh in-memory layer per test (and per event loop)
        try:
            yield made
        finally:
            in_db_thread(_remove_world, made)
            channel_layers.backends.clear()


def fix(device_id: str, lon: float, lat: float, at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    return {"device_id": device_id, "time": at.isoformat(), "lon": lon, "lat": lat, **extra}


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def run(coro: Any) -> Any:
    """Run an async scenario to its end in a fresh event loop (no pytest-asyncio needed).

    Left-over tasks (the hub, stream flushers, channels-redis readers) are cancelled and given a
    bounded time to finish: a Redis read being cancelled can take longer than a test should wait,
    which is why this is not asyncio.run."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout=60))
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=2))
        loop.close()


async def receive(communicator: Any, timeout: float = WAIT) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def receive_type(communicator: Any, *types: str, timeout: float = WAIT) -> dict[str, Any]:
    """The next message of one of `types`, skipping others (hello, pong)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await receive(communicator, max(0.01, deadline - loop.time()))
        if message["type"] in types:
            return message


def apply_frame(state: dict[str, dict[str, Any]], frame: dict[str, Any]) -> None:
    """What a screen does with a frame: replace updated units, drop removed ones."""
    for unit in frame["units"]:
        state[unit["key"]] = {k: v for k, v in unit.items() if k != "committed_at"}
    for key in frame["removed"]:
        state.pop(key, None)


def snapshot_state(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["key"]: u for u in snapshot["units"]}


def positions(state: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float, str, bool]]:
    return {key: (u["lon"], u["lat"], u["at"], u.get("stale", False)) for key, u in state.items()}


async def database_view(district: str, bbox: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    """What a subscription to `district` (and `bbox`) sees, read straight from the tables: screens
    that share a feed take their snapshots from it, so "a fresh snapshot" is checked here too."""
    from channels.db import database_sync_to_async

    from accounts.jurisdiction import Jurisdiction
    from realtime import conf
    from realtime.units import Subscription, is_stale, load_snapshot

    sub = Subscription(Jurisdiction("district", district=district), bbox)
    records = await database_sync_to_async(load_snapshot)(sub)
    now, after = datetime.now(UTC).timestamp(), conf.get("STALE_AFTER_S")
    return positions({r["key"]: {**r, "stale": is_stale(r, now, after)} for r in records})
