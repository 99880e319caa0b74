"""The hub notices by itself that the channel layer forgot its group memberships (what a Redis
restart does, and what the in-memory layer does to a channel whose message waited too long):
its probe does not come back, screens are told `lagging`, the hub re-joins and rebuilds its feeds
from the database, and screens get the fix they missed, then `caught_up` — in one process, with
the in-memory layer (tests/test_faults_redis.py does it with a real Redis restarted)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from realtime.actions import do_ingest_fixes
from realtime.hub import PROBE_EVERY_S, PROBE_TIMEOUT_S, Hub
from tests.realtime_support import apply_frame, fix, receive, run, snapshot_state, world  # noqa: F401
from tests.test_realtime_map import open_screen

pytestmark = pytest.mark.django_db


def test_a_hub_that_lost_its_memberships_recovers_and_screens_get_what_they_missed(world):  # noqa: F811
    a1 = world.officers["a1"]
    key = f"officer:{a1.id}"

    async def scenario() -> None:
        screen, snapshot = await open_screen(world, "district_a")
        state: dict[str, Any] = snapshot_state(snapshot)
        hub = await Hub.get()
        layer = get_channel_layer()
        assert hub.lagging is None
        layer.groups.clear()  # the layer forgets every membership, as a restarted Redis does
        forgotten = time.monotonic()
        report = await database_sync_to_async(do_ingest_fixes)([fix(a1.device_id, 116.21, 39.81)], world.gateway)
        assert report.results[0]["status"] == "accepted"  # committed, and its event reached nobody

        seen: list[str] = []
        while "caught_up" not in seen:
            message = await receive(screen, timeout=PROBE_TIMEOUT_S + 3 * PROBE_EVERY_S + 5)
            seen.append(message["type"])
            if message["type"] == "lagging":
                assert time.monotonic() - forgotten < PROBE_TIMEOUT_S + 3 * PROBE_EVERY_S
                assert key not in state  # nothing came before the hub noticed
            elif message["type"] == "frame":
                apply_frame(state, message)
        assert seen.index("lagging") < seen.index("caught_up")
        assert state[key]["lon"] == 116.21  # the fix the layer lost, read from the database
        assert layer.groups  # the hub is a member again
        # ... and live again.
        await database_sync_to_async(do_ingest_fixes)([fix(a1.device_id, 116.22, 39.82)], world.gateway)
        while state[key]["lon"] != 116.22:
            message = await receive(screen)
            if message["type"] == "frame":
                apply_frame(state, message)
        await screen.disconnect()

    run(scenario())
