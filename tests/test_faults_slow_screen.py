"""A screen that stops reading, on a real server: it is let go with the documented 4408 (resume
or subscribe again), not by uvicorn's keepalive with a 1011 after 40 s, and the other screens of
its subscription are not held up meanwhile.

Issue 14: a slow screen was always cut by the keepalive (1011 after 40 s), because uvicorn holds
every send — the stream's close included — until the socket is writable again. Now a stream
whose socket took no frame for SLOW_SCREEN_S (10 s) while frames waited is let go, the close goes
out at once (config/ws.py) and the keepalive acts only later (ping every 20 s, 40 s to answer)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest

from geo.models import Officer, PositionFix
from tests.fault_support import Reporter, Screen, run_scenario, until
from tests.live_server import running_server
from tests.realtime_support import DISTRICT_A, STREET_A1, in_db_thread, world  # noqa: F401

pytestmark = pytest.mark.django_db

CROWD = 150  # units reporting: frames of ~50 KB, up to 4 a second
STOPPED_S = 22  # the screen reads nothing this long: buffers fill in a few seconds, then 10 s


@pytest.fixture
def crowd(world):  # type: ignore[no-untyped-def]  # noqa: F811
    """More officers in the made-up district, so that frames are large enough to fill buffers."""
    unit = world.officers["a1"].unit_id

    def make() -> list[str]:
        officers = Officer.objects.bulk_create([Officer(
            unit_id=unit, district_id=DISTRICT_A, street_id=STREET_A1, call_sign=f"T{world.tag}-C{i}",
            device_id=f"T{world.tag}-CROWD-{i}", name=f"队员C{i}", badge=f"T{world.tag}C{i}") for i in range(CROWD)])
        return [o.device_id for o in officers]

    def remove(devices: list[str]) -> None:
        PositionFix.objects.filter(device_id__in=devices).delete()
        Officer.objects.filter(device_id__in=devices).delete()

    devices = in_db_thread(make)
    try:
        yield devices
    finally:
        in_db_thread(remove, devices)


def test_a_screen_that_stops_reading_is_closed_with_4408(world, crowd):  # noqa: F811
    from websockets.asyncio.client import connect

    async def scenario(base: str) -> None:
        host, port = base.split("://")[1].split(":")
        token = world.api_tokens["district_a"]
        # The slow screen: a small receive buffer, and at most one message taken off the socket.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.setblocking(False)
        slow = await connect(f"ws://{host}:{port}/ws/map?token={token}", sock=sock, max_queue=1,
                             ping_interval=None, compression=None)
        await slow.send(json.dumps({"type": "subscribe"}))
        while json.loads(await asyncio.wait_for(slow.recv(), 10))["type"] != "snapshot":
            pass
        healthy = await Screen.open(base, token)
        spots = {device: (116.201 + i * 0.001, 39.85) for i, device in enumerate(crowd)}
        reporter = Reporter(base, world.gateway_token, spots, every=0.25).start()

        stopped_at = time.monotonic()
        frames_before = len(healthy.types("frame"))
        await until(lambda: time.monotonic() - stopped_at > STOPPED_S, STOPPED_S + 1, "the slow period")
        assert len(healthy.types("frame")) > frames_before + STOPPED_S // 2, "the healthy screen was held up"

        # Now read what came: frames, then the close — 4408, queued as soon as the stream let go.
        received: list[dict[str, Any]] = []
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                received.append(json.loads(await asyncio.wait_for(slow.recv(), 10)))
        except ConnectionClosed:
            pass
        await reporter.stop()
        assert slow.close_code == 4408, (slow.close_code, slow.close_reason)
        # Bounded by the buffers and the outbox, not by the time it did not read.
        frames = [m for m in received if m["type"] == "frame"]
        assert 0 < len(frames) < 4 * STOPPED_S * 0.6, len(frames)
        assert not healthy.closed, healthy.close_code
        await healthy.close()

    with running_server() as base:
        run_scenario(scenario(base), timeout=90)
