"""/ws/map: snapshot, coalesced numbered frames, jurisdiction, resume, staleness, bad frames."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from realtime.actions import do_ingest_fixes
from tests.realtime_support import (
    DISTRICT_A,
    WAIT,
    ago,
    apply_frame,
    database_view,
    fix,
    positions,
    receive,
    receive_type,
    run,
    snapshot_state,
    world,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.django_db


async def ingest(world_: Any, *fixes: dict[str, Any]) -> None:
    report = await database_sync_to_async(do_ingest_fixes)(list(fixes), world_.gateway)
    assert {r["status"] for r in report.results} <= {"accepted", "duplicate"}, report.results


async def open_screen(world_: Any, who: str | None, **subscription: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    path = f"/ws/map?token={world_.api_tokens[who]}" if who else "/ws/map"
    screen = WebsocketCommunicator(application, path)
    connected, _ = await screen.connect(timeout=WAIT)
    assert connected
    await receive_type(screen, "hello")
    await screen.send_json_to({"type": "subscribe", **subscription})
    return screen, await receive_type(screen, "snapshot", "resync")


async def frames_until(screen: WebsocketCommunicator, state: dict[str, Any], done: Any,
                       seqs: list[int] | None = None) -> None:
    """Apply frames to `state` until done(state) holds (or fail after WAIT seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not done(state):
        frame = await receive_type(screen, "frame", timeout=max(0.01, deadline - loop.time()))
        if seqs is not None:
            seqs.append(frame["seq"])
        apply_frame(state, frame)


def at_least(key: str, lon: float) -> Any:
    return lambda state: key in state and state[key]["lon"] == lon


def test_screens_see_only_their_jurisdiction(world):  # noqa: F811
    a1, a2, b1 = (world.officers[n] for n in ("a1", "a2", "b1"))

    async def scenario() -> None:
        screen_a, snap_a = await open_screen(world, "district_a")
        screen_b, snap_b = await open_screen(world, "district_b")
        screen_s, snap_s = await open_screen(world, "street_a1")
        assert snap_a["units"] == snap_b["units"] == snap_s["units"] == []
        assert snap_s["subscription"]["scope"] == "street 110198001"
        await ingest(world, fix(a1.device_id, 116.21, 39.81), fix(a2.device_id, 116.27, 39.82))
        state_a: dict[str, Any] = {}
        await frames_until(screen_a, state_a, lambda s: len(s) == 2)
        state_s: dict[str, Any] = {}
        await frames_until(screen_s, state_s, lambda s: f"officer:{a1.id}" in s)
        # District B's first frame is its own unit only: nothing of district A came before it.
        await ingest(world, fix(b1.device_id, 116.35, 39.85))
        frame_b = await receive_type(screen_b, "frame")
        assert [u["key"] for u in frame_b["units"]] == [f"officer:{b1.id}"] and frame_b["seq"] == 1
        # The street screen never got A2's officer either; a fresh snapshot agrees.
        assert set(state_s) == {f"officer:{a1.id}"}
        for screen in (screen_a, screen_b, screen_s):
            await screen.disconnect()

    run(scenario())


def test_refusals_and_bad_frames_keep_the_socket_open(world):  # noqa: F811
    async def scenario() -> None:
        anonymous = WebsocketCommunicator(application, "/ws/map")
        await anonymous.connect(timeout=WAIT)
        assert (await receive(anonymous))["error"] == "unauthorized"
        assert (await anonymous.receive_output(timeout=WAIT))["code"] == 4401
        wrong = WebsocketCommunicator(application, "/ws/map?token=om_wrong")
        await wrong.connect(timeout=WAIT)
        assert (await receive(wrong))["error"] == "unauthorized"

        screen = WebsocketCommunicator(application, f"/ws/map?token={world.api_tokens['district_a']}")
        await screen.connect(timeout=WAIT)
        await receive_type(screen, "hello")
        for bad, error in [("{nope", "malformed_json"), ("[1, 2]", "bad_frame"), ('{"type": "dance"}', "unknown_type"),
                           ('{"type": "subscribe", "district": "110199"}', "invalid_subscription"),
                           ('{"type": "subscribe", "bbox": [1, 2, "x", 4]}', "invalid_subscription"),
                           ('{"type": "subscribe", "bbox": [117, 40, 116, 39]}', "invalid_subscription"),
                           ('{"type": "subscribe", "layers": ["cameras"]}', "invalid_subscription")]:
            await screen.send_to(text_data=bad)
            assert (await receive(screen))["error"] == error, bad
        await screen.send_to(bytes_data=b"\x00\x01")
        assert (await receive(screen))["error"] == "bad_frame"
        await screen.send_json_to({"type": "ping", "ref": 7})
        assert await receive(screen) == {"type": "pong", "ref": 7}
        await screen.disconnect()

    run(scenario())


def test_snapshot_plus_events_equals_a_fresh_snapshot(world):  # noqa: F811
    a1, a2, v1, b1 = world.officers["a1"], world.officers["a2"], world.vehicles["a1"], world.officers["b1"]
    bbox = [116.20, 39.80, 116.25, 39.90]  # the western half of district A

    async def scenario() -> None:
        await ingest(world, fix(a1.device_id, 116.21, 39.81, ago(50)), fix(a2.device_id, 116.27, 39.81, ago(50)),
                     fix(v1.device_id, 116.22, 39.82, ago(50)))
        screen, snapshot = await open_screen(world, "district_a", bbox=bbox)
        state = snapshot_state(snapshot)
        assert set(state) == {f"officer:{a1.id}", f"vehicle:{v1.id}"}
        await ingest(world, fix(a2.device_id, 116.24, 39.83, ago(40)))  # moves into the view
        await ingest(world, fix(a1.device_id, 116.28, 39.84, ago(40)))  # leaves the view
        await ingest(world, fix(a1.device_id, 116.215, 39.81, ago(45)))  # late and older: stored only
        await ingest(world, fix(v1.device_id, 116.23, 39.85, ago(30)), fix(v1.device_id, 116.21, 39.80, ago(60)))
        await ingest(world, fix(b1.device_id, 116.35, 39.85, ago(30)))  # another district
        await ingest(world, fix(v1.device_id, 116.23, 39.85, ago(30)))  # a duplicate
        await ingest(world, fix(a2.device_id, 116.245, 39.86, ago(20)))  # the marker: last of all
        seqs: list[int] = []
        await frames_until(screen, state, at_least(f"officer:{a2.id}", 116.245), seqs)
        assert seqs == list(range(1, len(seqs) + 1))
        fresh_screen, fresh = await open_screen(world, "district_a", bbox=bbox)
        assert state == snapshot_state(fresh)
        assert positions(state) == await database_view(DISTRICT_A, tuple(bbox))  # type: ignore[arg-type]
        assert set(state) == {f"officer:{a2.id}", f"vehicle:{v1.id}"} and state[f"vehicle:{v1.id}"]["lon"] == 116.23
        await screen.disconnect()
        await fresh_screen.disconnect()

    run(scenario())


def test_resume_after_reconnect_has_no_gap(world):  # noqa: F811
    a1, a2 = world.officers["a1"], world.officers["a2"]

    async def scenario() -> None:
        screen, snapshot = await open_screen(world, "district_a")
        state, seqs = snapshot_state(snapshot), [0]
        stream = snapshot["stream"]
        await ingest(world, fix(a1.device_id, 116.21, 39.81, ago(30)))
        await frames_until(screen, state, at_least(f"officer:{a1.id}", 116.21), seqs)
        await ingest(world, fix(a2.device_id, 116.26, 39.81, ago(30)))
        # This frame reaches the socket, but the client "loses" it: it will resume from before it.
        lost = await receive_type(screen, "frame")
        await screen.disconnect()
        # While the screen is away, units keep moving.
        await ingest(world, fix(a1.device_id, 116.22, 39.82, ago(20)))
        await ingest(world, fix(a2.device_id, 116.27, 39.83, ago(10)))

        again = WebsocketCommunicator(application, f"/ws/map?token={world.api_tokens['district_a']}")
        await again.connect(timeout=WAIT)
        await receive_type(again, "hello")
        await again.send_json_to({"type": "subscribe", "resume": {"stream": stream, "seq": seqs[-1]}})
        resumed = await receive_type(again, "resumed", "resync")
        assert resumed["type"] == "resumed" and resumed["replayed"] >= 1
        await frames_until(again, state, lambda s: at_least(f"officer:{a2.id}", 116.27)(s)
                           and at_least(f"officer:{a1.id}", 116.22)(s), seqs)
        assert lost["seq"] in seqs
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # consecutive: no gap
        fresh_screen, fresh = await open_screen(world, "district_a")
        assert state == snapshot_state(fresh)
        assert positions(state) == await database_view(DISTRICT_A)

        # Another user cannot take the stream over; an unknown stream gets a new snapshot.
        other = WebsocketCommunicator(application, f"/ws/map?token={world.api_tokens['city']}")
        await other.connect(timeout=WAIT)
        await receive_type(other, "hello")
        await other.send_json_to({"type": "subscribe", "resume": {"stream": stream, "seq": 0}})
        assert (await receive_type(other, "resumed", "resync"))["type"] == "resync"
        assert (await receive_type(other, "snapshot"))["stream"] != stream
        for s in (again, fresh_screen, other):
            await s.disconnect()

    run(scenario())


def test_resume_too_far_behind_gets_a_new_snapshot(world):  # noqa: F811
    async def scenario() -> None:
        screen, snapshot = await open_screen(world, "district_a")
        await screen.disconnect()
        again, message = await open_screen(world, "district_a", resume={"stream": snapshot["stream"], "seq": 99})
        assert message == {**message, "type": "resync", "reason": "too_far_behind"}
        assert (await receive_type(again, "snapshot"))["seq"] == 0
        await again.disconnect()

    run(scenario())


def test_units_that_stop_reporting_turn_stale(world, settings):  # noqa: F811
    settings.ONEMAP_STALE_AFTER_S = 2
    a1 = world.officers["a1"]
    key = f"officer:{a1.id}"

    async def scenario() -> None:
        screen, _ = await open_screen(world, "district_a")
        state: dict[str, Any] = {}
        await ingest(world, fix(a1.device_id, 116.21, 39.81, ago(1.0)))
        await frames_until(screen, state, lambda s: key in s)
        # Fresh when it arrived (unless this machine took a second to deliver it) ...
        await frames_until(screen, state, lambda s: s[key]["stale"] is True)  # ... then marked stale
        fresh_screen, fresh = await open_screen(world, "district_a")
        assert snapshot_state(fresh)[key]["stale"] is True and state == snapshot_state(fresh)
        assert positions(state) == await database_view(DISTRICT_A)
        await screen.disconnect()
        await fresh_screen.disconnect()

    run(scenario())
