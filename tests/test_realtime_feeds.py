"""Screens with the same subscription share one feed: one frame body per tick for all of them, yet
each screen keeps its own numbering, its own resume and its own pace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from accounts.jurisdiction import Jurisdiction
from config.asgi import application
from realtime.feeds import Feed
from realtime.hub import Hub
from realtime.streams import Stream, UnitRec
from realtime.units import Subscription
from tests.realtime_support import (
    DISTRICT_A,
    WAIT,
    ago,
    database_view,
    fix,
    positions,
    receive_type,
    run,
    snapshot_state,
    world,  # noqa: F401 (a fixture)
)
from tests.test_realtime_map import at_least, frames_until, ingest, open_screen

pytestmark = pytest.mark.django_db


def body(frame_text: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    return frame_text["units"], frame_text["removed"]


def test_same_subscription_one_feed_own_numbering(world):  # noqa: F811
    a1, a2 = world.officers["a1"], world.officers["a2"]

    async def scenario() -> None:
        await ingest(world, fix(a1.device_id, 116.21, 39.81, ago(60)))
        first, snap_first = await open_screen(world, "district_a")
        hub = await Hub.get()
        feeds_before = len(hub.feeds)
        second, snap_second = await open_screen(world, "district_a")  # another screen, same view
        assert len(hub.feeds) == feeds_before  # it joined the first one's feed
        assert snap_first["stream"] != snap_second["stream"]
        assert snapshot_state(snap_first) == snapshot_state(snap_second)
        assert positions(snapshot_state(snap_second)) == await database_view(DISTRICT_A)

        await ingest(world, fix(a2.device_id, 116.26, 39.82, ago(30)))
        frame_1 = await receive_type(first, "frame")
        frame_2 = await receive_type(second, "frame")
        assert frame_1["seq"] == frame_2["seq"] == 1 and frame_1["stream"] != frame_2["stream"]
        assert body(frame_1) == body(frame_2) and [u["key"] for u in frame_1["units"]] == [f"officer:{a2.id}"]

        # A third screen joins later: its snapshot comes from the feed, and matches the tables.
        third, snap_third = await open_screen(world, "district_a")
        state = snapshot_state(snap_third)
        assert positions(state) == await database_view(DISTRICT_A)
        await ingest(world, fix(a1.device_id, 116.22, 39.83, ago(10)))
        await frames_until(third, state, at_least(f"officer:{a1.id}", 116.22))
        assert positions(state) == await database_view(DISTRICT_A)
        for screen in (first, second, third):
            await screen.disconnect()

    run(scenario())


def test_a_screen_that_leaves_a_shared_feed_resumes_without_gap(world):  # noqa: F811
    a1, a2 = world.officers["a1"], world.officers["a2"]

    async def scenario() -> None:
        staying, snap_staying = await open_screen(world, "district_a")
        leaving, snap_leaving = await open_screen(world, "district_a")
        state_staying, state = snapshot_state(snap_staying), snapshot_state(snap_leaving)
        seqs = [0]
        await ingest(world, fix(a1.device_id, 116.21, 39.81, ago(40)))
        await frames_until(leaving, state, at_least(f"officer:{a1.id}", 116.21), seqs)
        await leaving.disconnect()
        # While it is away, the other screen keeps receiving frames (which empty the feed's
        # pending updates) and units keep moving.
        await ingest(world, fix(a2.device_id, 116.26, 39.82, ago(30)))
        await frames_until(staying, state_staying, at_least(f"officer:{a2.id}", 116.26))
        await ingest(world, fix(a1.device_id, 116.23, 39.84, ago(20)))
        await frames_until(staying, state_staying, at_least(f"officer:{a1.id}", 116.23))

        again = WebsocketCommunicator(application, f"/ws/map?token={world.api_tokens['district_a']}")
        await again.connect(timeout=WAIT)
        await receive_type(again, "hello")
        await again.send_json_to({"type": "subscribe", "resume": {"stream": snap_leaving["stream"], "seq": seqs[-1]}})
        assert (await receive_type(again, "resumed", "resync"))["type"] == "resumed"
        await frames_until(again, state, lambda s: at_least(f"officer:{a2.id}", 116.26)(s)
                           and at_least(f"officer:{a1.id}", 116.23)(s), seqs)
        assert seqs == list(range(len(seqs)))  # 0, 1, 2, ...: nothing missed
        assert positions(state) == positions(state_staying) == await database_view(DISTRICT_A)
        for screen in (staying, again):
            await screen.disconnect()

    run(scenario())


class StuckSocket:
    """A screen that never finishes taking a frame (a stalled TCP connection)."""

    def __init__(self) -> None:
        self.sent = 0
        self.too_slow = asyncio.Event()
        self.never = asyncio.Event()

    async def send_stream_text(self, text: str) -> None:
        self.sent += 1
        await self.never.wait()

    async def stream_taken_over(self) -> None:
        pass

    async def stream_too_slow(self) -> None:
        self.too_slow.set()


class Registry:
    def __init__(self) -> None:
        self.lagging: str | None = None
        self.feeds: set[Feed] = set()

    def add_feed(self, feed: Feed) -> None:
        self.feeds.add(feed)

    def remove_feed(self, feed: Feed) -> None:
        self.feeds.discard(feed)


def test_a_stuck_screen_is_let_go_and_does_not_hold_up_the_others():
    record = {"key": "officer:1", "kind": "officer", "district": "110101", "street": "110101001",
              "lon": 116.4, "lat": 39.9, "t": 0.0}

    async def scenario() -> None:
        feed = Feed(Subscription(Jurisdiction("city")), Registry())
        feed.install([], UnitRec)
        stuck, healthy = Stream(None), Stream(None)
        for stream in (stuck, healthy):
            feed.join(stream)
            stream.snapshot_text()
        stuck_socket, healthy_socket = StuckSocket(), StuckSocket()
        healthy_socket.never.set()  # this one takes every frame at once
        await stuck.attach(stuck_socket)
        await healthy.attach(healthy_socket)
        frames = 0
        while not stuck_socket.too_slow.is_set():
            frames += 1
            assert frames < 10_000, "the stuck screen was never let go"
            feed.offer([UnitRec({**record, "t": float(frames), "lon": 116.4 + frames * 1e-6}, 0.0)])
            feed.tick()
            await asyncio.sleep(0)  # let the senders run
        assert stuck.away and stuck_socket.sent == 1  # it got one frame, stuck on it, and was let go
        assert healthy.seq == frames and healthy_socket.sent >= frames - 1
        feed.close()

    run(scenario())
