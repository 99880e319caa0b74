"""Redis stopped (SIGKILL) and started again, empty, under two real server processes: devices
report through one, screens and a phone are connected to the other.

Issue 14: after a Redis restart the processes' group memberships were gone for good (screens got
nothing until a server restart), fixes acknowledged during the outage never reached the screens
(later snapshots came from a stale in-memory view), and every WebSocket was dropped. Now: the
sockets stay, screens are told `lagging` and then `caught_up`, show every acknowledged fix, and
keep receiving live positions — without a server restart."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fault_support import PrivateRedis, Reporter, Screen, http, missing_fixes, run_scenario, until
from tests.live_server import running_server
from tests.realtime_support import DISTRICT_A, STREET_A1, database_view, world  # noqa: F401

pytestmark = pytest.mark.django_db

STALE_AFTER_S = 3  # short, so that a unit silent only for the screens would be marked stale
LAGGING_WITHIN_S = 8  # the hub's probe: 1 s period, 5 s timeout (a failed send counts at once)
CAUGHT_UP_WITHIN_S = 15  # re-join, one probe back, one database read per feed, after back-off ≤ 5 s


async def shows_database(screen: Screen, district: str, what: str, timeout: float = 10) -> None:
    """The screen's state equals a fresh read of the database (fix times of every unit)."""
    expected: dict[str, Any] = {}

    async def check() -> bool:
        expected.clear()
        expected.update({k: v[2] for k, v in (await database_view(district)).items()})
        return screen.at() == expected

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the screen shows {screen.at()}, the database {expected}")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("outage_s", [10])
def test_screens_keep_live_positions_through_a_redis_restart(world, settings, tmp_path, outage_s):  # noqa: F811
    settings.ONEMAP_STALE_AFTER_S = STALE_AFTER_S
    service = PrivateRedis(tmp_path)
    service.start()
    env = {"REDIS_URL": service.url, "ONEMAP_STALE_AFTER_S": str(STALE_AFTER_S)}
    a1, a2 = world.officers["a1"], world.officers["a2"]
    phone_device = world.vehicles["a1"].device_id
    moving = {f"officer:{a1.id}", f"officer:{a2.id}"}

    async def scenario(ingest: str, screens_at: str) -> None:
        from websockets.asyncio.client import connect

        district = await Screen.open(screens_at, world.api_tokens["district_a"])
        street = await Screen.open(screens_at, world.api_tokens["street_a1"])
        phone = await connect(f"ws://{screens_at.split('://')[1]}/ws/field?token={world.device_tokens[phone_device]}")
        reporter = Reporter(ingest, world.gateway_token, {a1.device_id: (116.21, 39.81), a2.device_id: (116.27, 39.82)})
        reporter.start()
        await until(lambda: moving <= set(district.state), 10, "live positions before the outage")

        service.kill()
        killed = time.time()
        killed_dt = datetime.fromtimestamp(killed, UTC)
        await until(lambda: all(s.types("lagging") for s in (district, street)), LAGGING_WITHIN_S, "lagging")
        # While Redis is away: fixes are still acknowledged, a push is still stored, and a new
        # district screen still gets its snapshot (only PostgreSQL is needed) with those fixes.
        status, _, ready = await asyncio.to_thread(http, "GET", f"{screens_at}/readyz")
        assert status == 503 and ready["down"] == ["redis"], ready
        status, _, push = await asyncio.to_thread(
            http, "POST", f"{ingest}/api/pushes", {"device_id": phone_device, "kind": "task", "payload": {"n": 1}},
            world.api_tokens["district_a"])
        assert status == 201, push
        await until(lambda: (reporter.latest(a1.device_id) or killed_dt).timestamp() > killed, 5,
                    "a fix acknowledged during the outage")
        acknowledged_before = reporter.latest(a1.device_id)
        assert acknowledged_before is not None
        during = await Screen.open(screens_at, world.api_tokens["district_a"])
        assert during.state[f"officer:{a1.id}"]["t"] >= acknowledged_before.timestamp() - 1e-3, \
            "a snapshot taken during the outage misses a fix acknowledged before it"
        await until(lambda: during.types("lagging"), 5, "lagging on a screen opened during the outage")
        await until(lambda: time.time() > killed + outage_s, outage_s + 1, "the end of the outage")

        service.start()
        await until(lambda: all(s.types("caught_up") for s in (district, street, during)), CAUGHT_UP_WITHIN_S,
                    "caught_up")
        client = service.client()
        await until(lambda: client.exists("asgi:group:rt.districts") == 1, 5, "the hubs' group memberships")
        client.close()
        assert (await asyncio.to_thread(http, "GET", f"{screens_at}/readyz"))[0] == 200

        # Live again, on the old screens and on one opened after the outage.
        after = await Screen.open(screens_at, world.api_tokens["district_a"])
        sent_after = len(reporter.answers)
        await until(lambda: len(reporter.answers) > sent_after + 3, 10, "fixes after the outage")
        latest = reporter.latest(a1.device_id)
        assert latest is not None
        for screen in (district, street, during, after):
            await until(lambda s=screen: s.state.get(f"officer:{a1.id}", {}).get("t", 0) >= latest.timestamp() - 1e-3,
                        10, "a live fix on every screen")
        await reporter.stop()
        for screen, scope in ((district, DISTRICT_A), (during, DISTRICT_A), (after, DISTRICT_A)):
            await shows_database(screen, scope, "a district screen after the outage")
        street_expected = {k: v for k, v in (await database_view(DISTRICT_A)).items() if k in street.state}
        assert set(street.state) == {f"officer:{a1.id}"} and street.at() == {k: v[2] for k, v in street_expected.items()}

        # The push stored during the outage reached the phone, which stayed connected.
        messages: list[dict[str, Any]] = []
        while not any(m.get("type") == "push" and m.get("id") == push["id"] for m in messages):
            messages.append(json.loads(await asyncio.wait_for(phone.recv(), 15)))
        await phone.close()

        # The sockets stayed open; units that kept reporting were never marked stale.
        for screen in (district, street, during, after):
            assert not screen.closed, f"a screen was dropped (close code {screen.close_code})"
            assert not [key for _, key in screen.stale_marks if key in moving], screen.stale_marks
        # Every fix acknowledged is stored; every answer was a 200, the outage included.
        assert {a.status for a in reporter.answers} == {200}, [a.status for a in reporter.answers]
        assert missing_fixes(reporter.acknowledged) == []
        for screen in (district, street, during, after):
            await screen.close()

    try:
        with running_server(env) as ingest, running_server(env) as screens_at:
            run_scenario(scenario(ingest, screens_at))
    finally:
        service.stop()

