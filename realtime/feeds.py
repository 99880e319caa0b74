"""A feed: the live view of one subscription, shared by every stream (screen) that has it.

Twenty wall screens of the command centre subscribe to the same thing (the whole city). Each
event used to be applied twenty times and each frame built twenty times; a feed applies it once
and builds one frame body per tick, and its streams only add their own header (stream id,
sequence number) and keep their own resume ring. The cost of fan-out is then per distinct
subscription, not per screen.

A feed is created by the first stream of a subscription, from a snapshot read from the database
(`install`); later streams of the same subscription take their snapshot from the feed's view, so
what they hold plus the feed's next frames is exactly what the feed holds (no database read, no
window in which an event could fall between the snapshot and the frames).

A stream whose screen goes away must keep collecting updates (coalesced) for a resume, but the
other screens keep receiving frames, which empty the feed's `pending`. So, at the next tick, a
detached stream of a shared feed is given a private copy of the feed (its view and its pending
updates) and goes on alone; a stream alone in its feed simply keeps the feed coalescing while it
is away. Private feeds are never joined by new subscriptions.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from config import metrics
from realtime import conf
from realtime.units import ALL_KINDS, Subscription

if TYPE_CHECKING:
    from realtime.streams import Stream, UnitRec

log = logging.getLogger(__name__)


class FeedRegistry(Protocol):
    """Where feeds live (the hub): every live feed is offered every event. `lagging` (a reason,
    or None) says events may be missing: silence then proves nothing, so no unit turns stale."""

    lagging: str | None

    def add_feed(self, feed: Feed) -> None: ...

    def remove_feed(self, feed: Feed) -> None: ...


class SnapshotFailed(RuntimeError):
    pass


class Feed:
    def __init__(self, sub: Subscription, registry: FeedRegistry, *, shared: bool = True) -> None:
        self.sub = sub
        self.registry = registry
        self.shared = shared
        self.members: list[Stream] = []
        self.view: dict[str, UnitRec] = {}  # units in the subscription's bbox, as last framed
        self.latest_t: dict[str, float] = {}  # every unit of the scope seen, in the bbox or not
        self.pending: dict[str, UnitRec | None] = {}  # None: the unit left the view
        self.stale_keys: set[str] = set()
        # (t, key) of the units framed fresh, to find the ones that turn stale; entries superseded
        # by a later record are skipped when popped and dropped when the heap is rebuilt.
        self._stale_heap: list[tuple[float, str]] = []
        self._buffer: list[UnitRec] | None = []  # events that arrive while the first snapshot is read
        self.ready = asyncio.Event()  # the first snapshot is installed (or failed: see `failed`)
        self.failed = False
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stale_after = float(conf.get("STALE_AFTER_S"))
        # The per-record tests this subscription needs (None: every record passes).
        scope = sub.scope
        self._district = scope.district if scope.level in ("district", "street") else None
        self._scope_test = None if scope.level in ("city", "district") else sub.in_scope
        self._kinds = None if sub.kinds >= ALL_KINDS else sub.kinds
        self._view_test = None if sub.bbox is None else sub.in_view

    # --- events in ---------------------------------------------------------------------------

    def offer(self, records: list[UnitRec], district: str | None = None) -> None:
        """Apply one event's records (all of `district`, when the sender said so). This runs for
        every feed on every event, so the common cases skip the per-record tests."""
        if self._district is not None and district is not None and district != self._district:
            return
        if self._buffer is not None:
            self._buffer.extend(r for r in records if self.sub.in_scope(r.data))
            return
        if self._district is not None and district is None or self._scope_test or self._kinds:
            records = [r for r in records if self.sub.in_scope(r.data)]
        latest_t, view, pending, in_view = self.latest_t, self.view, self.pending, self._view_test
        changed = False
        for rec in records:
            key = rec.key
            seen = latest_t.get(key)
            if seen is not None and seen >= rec.t:
                continue  # not newer than what this feed has: out of order or a repeat
            latest_t[key] = rec.t
            if in_view is None or in_view(rec.data):
                view[key] = rec
                pending[key] = rec
                changed = True
            elif key in view:
                del view[key]
                self.stale_keys.discard(key)
                pending[key] = None
                changed = True
        if changed:
            self.wakeup.set()

    def install(self, records: list[dict[str, Any]], intern: Callable[[dict[str, Any]], UnitRec]) -> None:
        """The first snapshot, read from the database after the hub joined the event groups:
        merged with the events that arrived meanwhile (the newer record of a unit wins)."""
        for data in records:
            rec = intern(data)
            self.view[rec.key] = rec
            self.latest_t[rec.key] = rec.t
        buffered, self._buffer = self._buffer or [], None
        self.offer(buffered)
        self.pending.clear()
        cutoff = time.time() - self.stale_after
        heap = self._stale_heap = []
        for key, rec in self.view.items():
            if rec.t < cutoff:
                self.stale_keys.add(key)
            else:
                heap.append((rec.t, key))
        heapq.heapify(heap)
        self.ready.set()

    def reload(self, records: list[dict[str, Any]], intern: Callable[[dict[str, Any]], UnitRec],
               before: dict[str, float]) -> None:
        """A fresh read of the database, after events may have been missed: what differs from
        the view goes out in the next frame, as if it had come as events. `before` is
        `latest_t` as it was when the read began: a unit that an event moved meanwhile keeps what
        the event said (it is at least as new as the read)."""
        fresh: dict[str, UnitRec] = {}
        for data in records:
            rec = intern(data)
            fresh[rec.key] = rec
        latest_t, view, pending = self.latest_t, self.view, self.pending
        for key, rec in fresh.items():
            seen = latest_t.get(key)
            if seen is not None and seen >= rec.t and key in view:
                continue
            if seen is not None and seen > rec.t:
                continue  # an event newer than the read moved it out of the view
            latest_t[key] = rec.t
            view[key] = pending[key] = rec
        for key in [k for k in view if k not in fresh and latest_t.get(k) == before.get(k)]:
            del view[key]  # out of the view, or out of the scope, by the database
            self.stale_keys.discard(key)
            pending[key] = None
        if pending:
            self.wakeup.set()

    def fail(self) -> None:
        """The first snapshot could not be read: streams waiting for it are told so."""
        self.failed = True
        self.ready.set()
        self.registry.remove_feed(self)

    def snapshot_units(self) -> list[str]:
        """The view as snapshot records, stale or not by now (a unit that turned stale since the
        last tick is also in the next frame, as stale: a harmless repeat)."""
        cutoff = time.time() - self.stale_after
        return [rec.encode(rec.t < cutoff, snapshot=True) for rec in self.view.values()]

    # --- members ------------------------------------------------------------------------------

    def join(self, stream: Stream) -> None:
        self.members.append(stream)
        stream.feed = self
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"feed {id(self):x}")

    def leave(self, stream: Stream) -> None:
        if stream in self.members:
            self.members.remove(stream)
        if not self.members:
            self.close()

    def close(self) -> None:
        self.registry.remove_feed(self)
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def _split_off(self, stream: Stream) -> None:
        """Give a detached stream a private copy of this feed: it keeps coalescing what it misses."""
        private = Feed(self.sub, self.registry, shared=False)
        private.view = dict(self.view)
        private.latest_t = dict(self.latest_t)
        private.pending = dict(self.pending)
        private.stale_keys = set(self.stale_keys)
        private._stale_heap = list(self._stale_heap)
        private._buffer = None
        private.ready.set()
        self.members.remove(stream)
        self.registry.add_feed(private)
        private.join(stream)

    # --- frames out ---------------------------------------------------------------------------

    def _sweep_stale(self, now: float) -> None:
        if self.registry.lagging is not None:
            return  # units may be silent only because their events are missing
        cutoff = now - self.stale_after
        heap = self._stale_heap
        while heap and heap[0][0] < cutoff:
            t, key = heapq.heappop(heap)
            rec = self.view.get(key)
            if rec is not None and rec.t == t and key not in self.stale_keys:
                self.pending[key] = rec

    def make_body(self, now: float) -> str | None:
        """The part of a frame after its header, once for all members; None if nothing changed."""
        self._sweep_stale(now)
        if not self.pending:
            return None
        metrics.observe_fanout_lag(now, self.pending)
        cutoff = now - self.stale_after
        units: list[str] = []
        removed: list[str] = []
        stale_keys, heap = self.stale_keys, self._stale_heap
        push, add, discard, append = heapq.heappush, stale_keys.add, stale_keys.discard, units.append
        for key, rec in self.pending.items():  # the hot loop: every unit of every frame of every feed
            if rec is None:
                removed.append(key)
            elif rec.t < cutoff:
                add(key)
                append(rec._json[1] or rec.encode(True))
            else:
                discard(key)
                push(heap, (rec.t, key))
                append(rec._json[0] or rec.encode(False))
        self.pending.clear()
        if len(heap) > 2 * len(self.view) + 64:  # drop superseded entries
            self._stale_heap = [(r.t, k) for k, r in self.view.items() if k not in stale_keys]
            heapq.heapify(self._stale_heap)
        return f'"units":[{",".join(units)}],"removed":{json.dumps(removed)}}}'

    def tick(self) -> None:
        """One frame for the members whose screen is there. Members whose screen went away are
        split off first (unless alone), with the pending updates they have not seen; members
        still taking their snapshot get nothing (their snapshot will hold all of it)."""
        away = [m for m in self.members if m.away]
        if away and len(away) < len(self.members):
            for member in away:
                self._split_off(member)
        now = time.time()
        mono = time.monotonic()
        for member in self.members:
            if not member.away:
                member.check_stalled(mono)
        present = [m for m in self.members if not m.away]
        if not present:
            self._sweep_stale(now)  # keep coalescing (and noting stale units) for a resume
            return
        body = self.make_body(now)
        if body is not None:
            for member in present:
                if member.installed:
                    member.emit(body, now)

    async def _run(self) -> None:
        """At most MAX_FRAMES_PER_S frames a second; a quiet feed still wakes each second to mark
        units that went stale."""
        interval = 1.0 / conf.get("MAX_FRAMES_PER_S")
        last = 0.0
        while True:
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self.wakeup.clear()
            delay = last + interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # rate limit: updates arriving meanwhile coalesce
            if self.ready.is_set() and not self.failed:
                try:
                    self.tick()
                except Exception:  # a bug must not silence every screen of this subscription
                    log.exception("feed %x: tick failed", id(self))
            last = time.monotonic()
