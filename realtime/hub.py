"""One hub per server process (per event loop): the process's single member of the channel-layer
groups that carry map events. It receives each event once and hands it to every feed of the
process (one per distinct subscription, shared by its screens' streams), which filters by
jurisdiction, layers and bbox. With Redis, every server process has
its own hub, so an event committed in any process reaches the screens of all of them.

The hub also watches its link to the layer, because events are fire-and-forget: a Redis restart
forgets every group membership (Redis keeps nothing), a failed publish loses its event, and
nothing tells the receivers. So the hub sends itself a probe every PROBE_EVERY_S through a group
of its own; a probe that fails to send, or does not come back within PROBE_TIMEOUT_S, or any
receive error or lost publish, puts the hub in the *lagging* state: screens are told
(`{"type": "lagging"}`), units are not marked stale from silence, and the hub keeps trying —
re-join every group, see a probe come back, then rebuild every feed's view from the database —
until it succeeds; then screens get `{"type": "caught_up"}` and the differences as ordinary
frames."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from config import dbhealth
from realtime import conf, events
from realtime.events import ALL_GROUP, DISTRICTS_GROUP, EVENT_TYPE, MISSED_KIND, district_group
from realtime.feeds import Feed
from realtime.streams import Stream, UnitRec
from realtime.units import Subscription, load_snapshot

log = logging.getLogger(__name__)

# Re-join the groups now and then even when the probes come back: channels-redis forgets group
# members after a day (group_expiry), and the in-memory layer drops a channel from every group as
# soon as one of its messages waited longer than `expiry` (60 s). A re-join is one dict update
# (in memory) or one ZADD per group (Redis).
GROUP_REFRESH_S = 30.0
JANITOR_S = 5.0
PROBE_TYPE = "rt.probe"
# A probe every second costs one group send; one that has not come back in 5 s means this
# process is deaf (its memberships are gone, or its channel overflowed and dropped events).
PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 5.0
RECOVER_BACKOFF_MAX_S = 5.0
# How long any single layer operation of the watcher may take before it counts as a failure.
LAYER_OP_TIMEOUT_S = 5.0

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = ""
        # Every group the hub must be a member of. Only what the hub wants: whether the layer still
        # has the membership is what the probes find out.
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
        # Why the feeds may be behind the database; None when caught up (module docstring).
        self.lagging: str | None = None
        self._misses = 0  # every miss counts: a recovery during which another one came starts over
        self._wake = asyncio.Event()
        self.probe_group = f"rt.hub.{uuid.uuid4().hex}"
        self._probe_n = 0
        self._probes_out: dict[int, float] = {}  # sent and not back yet: n -> monotonic time sent
        self._probe_back = asyncio.Event()
        self._reloads: dict[Feed, asyncio.Task[None]] = {}
        self._rebuilt_from = 0.0  # time.time() when the reads of the last recovery began
        # Objects with `async layer_recovered()` (field sockets: their device group is gone too).
        self.listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._loop: asyncio.AbstractEventLoop | None = None

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
        self._loop = asyncio.get_running_loop()
        events.PUBLISH_WATCHERS.add(self)
        self._tasks = [asyncio.create_task(self._receive_loop(), name="realtime hub"),
                       asyncio.create_task(self._janitor(), name="realtime hub janitor"),
                       asyncio.create_task(self._watch(), name="realtime hub watcher")]
        await self.join({ALL_GROUP, DISTRICTS_GROUP, self.probe_group})

    async def join(self, groups: set[str]) -> None:
        """Be a member of `groups`: each is added again every time (after a Redis restart the
        hub's memory of its memberships means nothing). A failure does not fail the caller — a
        screen's snapshot needs only the database — but makes the hub lag until it re-joined."""
        async with self._join_lock:
            self.groups |= groups
            try:
                for group in sorted(groups):
                    await asyncio.wait_for(self.layer.group_add(group, self.channel), LAYER_OP_TIMEOUT_S)
            except Exception as error:
                self.miss(f"the channel layer is unreachable ({type(error).__name__})")

    async def _rejoin(self) -> None:
        async with self._join_lock:
            for group in sorted(self.groups):
                await asyncio.wait_for(self.layer.group_add(group, self.channel), LAYER_OP_TIMEOUT_S)

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

    # --- events in ------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis went away: keep trying; the watcher recovers the feeds
                log.warning("realtime hub: receive failed (%s); retrying in %.1f s", error, backoff)
                self.miss(f"the channel layer failed ({type(error).__name__})")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.dispatch(message)

    def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == PROBE_TYPE:
            self._probe_returned(message.get("n"))
            return
        if kind != EVENT_TYPE:
            return
        if message.get("kind") == MISSED_KIND:  # a process could not publish an event
            last = message.get("last")
            # Lost before this hub's last rebuild began: the rebuild read them (1 s for clocks).
            if not (isinstance(last, int | float) and last + 1.0 < self._rebuilt_from):
                self.miss("an event could not be published")
            return
        if message.get("kind") == "task":
            self._task_event(message.get("data"))
            return
        if message.get("kind") != "positions":
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

    def _task_event(self, data: Any) -> None:
        """A dispatch task changed: a `task` message to every screen whose subscription has the
        tasks layer and whose scope (and bbox) holds the task's place."""
        task = data.get("task") if isinstance(data, dict) else None
        if not isinstance(task, dict):
            return
        text = None
        for stream in list(self.streams.values()):
            if stream.feed is None or not stream.sub.tasks:
                continue
            sub = stream.sub
            if not sub.sees_place(task.get("district"), task.get("street")) or not sub.in_view(task):
                continue
            text = text or json.dumps({"type": "task", "action": data.get("action"), "task": task,
                                       "event": data.get("event")}, ensure_ascii=False)
            stream.notice(text)

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

    # --- lagging and recovering -------------------------------------------------------------------

    def miss(self, reason: str) -> None:
        """Events may have been lost: the feeds may be behind the database until a recovery."""
        self._misses += 1
        if self.lagging is None:
            self.lagging = reason
            log.warning("realtime hub: lagging: %s", reason)
            self._notice({"type": "lagging", "detail": reason})
            self._wake.set()

    def publish_failed(self, reason: str) -> None:
        """Called by events._publish from any thread when an event of this process was lost."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.miss, reason)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _notice(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, ensure_ascii=False)
        for stream in list(self.streams.values()):
            stream.notice(text)

    def _probe_returned(self, n: Any) -> None:
        if isinstance(n, int):
            for sent in [k for k in self._probes_out if k <= n]:
                del self._probes_out[sent]
            self._probe_back.set()

    async def _send_probe(self) -> int:
        self._probe_n += 1
        n = self._probe_n
        self._probes_out[n] = time.monotonic()
        try:
            await asyncio.wait_for(self.layer.group_send(self.probe_group, {"type": PROBE_TYPE, "n": n}),
                                   LAYER_OP_TIMEOUT_S)
        except BaseException:
            self._probes_out.pop(n, None)
            raise
        return n

    async def _watch(self) -> None:
        """Probe while caught up; while lagging, try to recover, backing off up to 5 s."""
        backoff = PROBE_EVERY_S
        last_refresh = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), PROBE_EVERY_S if self.lagging is None else backoff)
            except TimeoutError:
                pass
            self._wake.clear()
            if self.lagging is not None:
                recovered = await self._recover()
                backoff = PROBE_EVERY_S if recovered else min(backoff * 2, RECOVER_BACKOFF_MAX_S)
                continue
            now = time.monotonic()
            if any(now - sent > PROBE_TIMEOUT_S for sent in self._probes_out.values()):
                self.miss("this process stopped receiving events (its group memberships were lost)")
                continue
            try:
                if now - last_refresh > GROUP_REFRESH_S:
                    last_refresh = now
                    await self._rejoin()
                await self._send_probe()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.miss(f"the channel layer is unreachable ({type(error).__name__})")

    async def _recover(self) -> bool:
        """Re-join every group, see a probe come back (events reach this process again), then
        rebuild every feed from the database. True when caught up."""
        misses = self._misses
        self._probes_out.clear()
        try:
            await self._rejoin()
            self._probe_back.clear()
            n = await self._send_probe()
            deadline = time.monotonic() + PROBE_TIMEOUT_S
            while n in self._probes_out:
                await asyncio.wait_for(self._probe_back.wait(), max(0.01, deadline - time.monotonic()))
                self._probe_back.clear()
            # From here every event committed reaches the feeds: a read now misses nothing.
            rebuilt_from = time.time()
            for feed in list(self.feeds):
                await self._reload(feed)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("realtime hub: not recovered yet (%s: %s)", type(error).__name__, error)
            return False
        if misses != self._misses:  # another loss while recovering: once more
            self._wake.set()
            return True
        self._rebuilt_from = rebuilt_from
        for feed in list(self.feeds):  # the differences now, so that they precede caught_up
            if feed.ready.is_set() and not feed.failed:
                feed.tick()
        self.lagging = None
        log.warning("realtime hub: caught up")
        self._notice({"type": "caught_up"})
        for listener in list(self.listeners):
            asyncio.get_running_loop().create_task(listener.layer_recovered())
        return True

    async def reload(self, feed: Feed) -> None:
        """Rebuild `feed`'s view from the database; concurrent callers share one read."""
        task = self._reloads.get(feed)
        if task is None:
            task = self._reloads[feed] = asyncio.get_running_loop().create_task(self._reload(feed))

            def done(finished: asyncio.Task[None], feed: Feed = feed) -> None:
                if self._reloads.get(feed) is finished:
                    del self._reloads[feed]

            task.add_done_callback(done)
        await asyncio.shield(task)

    async def _reload(self, feed: Feed) -> None:
        await feed.ready.wait()
        if feed.failed:
            return
        dbhealth.check()  # PostgreSQL known to be away: fail now, try again after the back-off
        before = dict(feed.latest_t)
        records = await database_sync_to_async(load_snapshot)(feed.sub)
        feed.reload(records, self.intern, before)

    async def _janitor(self) -> None:
        """Drop streams whose screen has been gone longer than the resume grace."""
        grace = conf.get("RESUME_GRACE_S")
        while True:
            await asyncio.sleep(JANITOR_S)
            now = time.monotonic()
            for stream in list(self.streams.values()):
                if stream.detached_at is not None and now - stream.detached_at > grace:
                    self.drop_stream(stream)
