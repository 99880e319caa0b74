"""One hub per server process (per event loop): the process's single member of the channel-layer
groups that carry map events. It receives each event once and hands it to every feed of the
process (one per distinct subscription, shared by its screens' streams), which filters by
jurisdiction, layers and bbox. With Redis, every server process has
its own hub, so an event committed in any process reaches the screens of all of them."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from channels.layers import get_channel_layer

from realtime import conf
from realtime.events import ALL_GROUP, DISTRICTS_GROUP, EVENT_TYPE, district_group
from realtime.feeds import Feed
from realtime.streams import Stream, UnitRec
from realtime.units import Subscription

log = logging.getLogger(__name__)

# Re-join the groups now and then: channels-redis forgets group members after a day
# (group_expiry), and the in-memory layer drops a channel from every group as soon as one of its
# messages waited longer than `expiry` (60 s) — an overloaded moment must not leave the hub
# deaf for good. A re-join is one dict update (in memory) or one ZADD per group (Redis).
GROUP_REFRESH_S = 30.0
JANITOR_S = 5.0

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = ""
        self.groups: set[str] = set()
        self.streams: dict[str, Stream] = {}
        self.feeds: set[Feed] = set()  # every live feed: each event is offered to each
        self.shared_feeds: dict[Subscription, Feed] = {}  # the ones a new subscription may join
        # The newest record of each unit this process has seen, from an event or a snapshot: the
        # streams share it (and its encoded JSON) instead of each holding a copy. Bounded by the
        # number of units. `event_t` is the newest fix time that came as an event.
        self.records: dict[str, UnitRec] = {}
        self.event_t: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._join_lock = asyncio.Lock()

    @classmethod
    async def get(cls) -> Hub:
        loop = asyncio.get_running_loop()
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = cls()
            await hub._start()
        return hub

    async def _start(self) -> None:
        # The default prefix: channels-redis polls one Redis list per process for all its
        # "specific." channels; a channel with another prefix would never be read.
        self.channel = await self.layer.new_channel()
        self._tasks = [asyncio.create_task(self._receive_loop(), name="realtime hub"),
                       asyncio.create_task(self._janitor(), name="realtime hub janitor")]
        await self.join({ALL_GROUP, DISTRICTS_GROUP})

    async def join(self, groups: set[str]) -> None:
        async with self._join_lock:
            for group in sorted(groups - self.groups):
                await self.layer.group_add(group, self.channel)
                self.groups.add(group)

    async def join_for(self, sub_districts: list[str]) -> None:
        await self.join({district_group(code) for code in sub_districts})

    def open_stream(self, sub: Subscription, user_id: int | None) -> tuple[Stream, bool]:
        """A new stream in the shared feed of `sub` (made if there is none). True when the caller
        made the feed and must install its first snapshot (`Feed.install`, or `Feed.fail`)."""
        stream = Stream(user_id)
        self.streams[stream.id] = stream
        feed = self.shared_feeds.get(sub)
        creator = feed is None
        if feed is None:
            feed = self.shared_feeds[sub] = Feed(sub, self)
            self.feeds.add(feed)
        feed.join(stream)
        return stream, creator

    def add_feed(self, feed: Feed) -> None:
        self.feeds.add(feed)

    def remove_feed(self, feed: Feed) -> None:
        self.feeds.discard(feed)
        if self.shared_feeds.get(feed.sub) is feed:
            del self.shared_feeds[feed.sub]

    def drop_stream(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)
        stream.close()

    async def _receive_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: keep trying; streams resume when it is back
                log.exception("realtime hub: receive failed; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.dispatch(message)

    def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != EVENT_TYPE or message.get("kind") != "positions":
            return
        committed_at = message.get("committed_at")
        by_district = message.get("by_district")
        if by_district is None:  # send_event(..., district=X): one district's records
            by_district = {message.get("district"): message.get("data") or ()}
        feeds = list(self.feeds)
        for district, data in by_district.items():
            records = self._fresh(data, committed_at)
            if records:
                for feed in feeds:
                    feed.offer(records, district)

    def _fresh(self, data: Any, committed_at: float | None) -> list[UnitRec]:
        records, shared, event_t = [], self.records, self.event_t
        for item in data:
            rec = UnitRec(item, committed_at)
            key = rec.key
            seen = event_t.get(key)
            # An event not newer than an earlier event of the unit: every stream either got the
            # earlier one or was opened after it was published (its snapshot is at least as new).
            if seen is not None and seen >= rec.t:
                continue
            event_t[key] = rec.t
            current = shared.get(key)
            if current is None or current.t <= rec.t:
                shared[key] = rec
            records.append(rec)
        return records

    def intern(self, data: dict[str, Any]) -> UnitRec:
        """The shared record for a snapshot row: the one already held when it is the same version."""
        current = self.records.get(data["key"])
        if current is not None and current.t == data["t"]:
            return current
        rec = UnitRec(data)
        if current is None or current.t < rec.t:
            self.records[rec.key] = rec
        return rec

    async def _janitor(self) -> None:
        """Drop streams whose screen has been gone longer than the resume grace; re-join groups."""
        grace = conf.get("RESUME_GRACE_S")
        last_refresh = time.monotonic()
        while True:
            await asyncio.sleep(JANITOR_S)
            now = time.monotonic()
            for stream in list(self.streams.values()):
                if stream.detached_at is not None and now - stream.detached_at > grace:
                    self.drop_stream(stream)
            if now - last_refresh > GROUP_REFRESH_S:
                last_refresh = now
                for group in sorted(self.groups):
                    await self.layer.group_add(group, self.channel)
