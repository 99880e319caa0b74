"""A screen's stream: what one subscription sees, coalesced into numbered frames.

A stream lives in the server process, not in the socket: when the screen's connection drops the
stream keeps collecting (coalesced, so its memory stays bounded by the units it sees) for
RESUME_GRACE_S, and a reconnecting screen that names the stream and the last sequence number it
processed gets the missing frames replayed, then the live frames continue with no gap.

Sequence numbers are assigned here, at fan-out time, in the order events are applied to this
stream; they never depend on database commit order. Each unit's record carries its fix time `t`,
and a record not newer than what the stream already holds for that unit is ignored, so events
that arrive out of order (two commits published in the opposite order) cannot move a unit back.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from realtime import conf
from realtime.units import ALL_KINDS, Subscription

log = logging.getLogger(__name__)

# Keep the replay buffer at most as large as a snapshot (a client further behind is better served
# by a new snapshot), but never smaller than this.
RESUME_MIN_BYTES = 256 * 1024


class Sink(Protocol):
    async def send_stream_text(self, text: str) -> None: ...

    async def stream_taken_over(self) -> None: ...


class UnitRec:
    """A unit record shared by every stream of the process (the hub interns them): its JSON is
    encoded once per variant — in a frame (with committed_at) or a snapshot, fresh or stale."""

    __slots__ = ("data", "key", "t", "committed_at", "_json")

    def __init__(self, data: dict[str, Any], committed_at: float | None = None) -> None:
        self.data = data
        self.key: str = data["key"]
        self.t: float = data["t"]
        self.committed_at = committed_at
        self._json: list[str | None] = [None, None, None, None]  # [frame fresh, frame stale, snapshot ...]

    def encode(self, stale: bool, snapshot: bool = False) -> str:
        slot = 2 * snapshot + stale
        text = self._json[slot]
        if text is None:
            payload = {**self.data, "stale": stale}
            if self.committed_at is not None and not snapshot:
                payload["committed_at"] = round(self.committed_at, 4)
            text = self._json[slot] = json.dumps(payload, ensure_ascii=False)
        return text


def _own_record(data: dict[str, Any]) -> UnitRec:
    return UnitRec(data)


class Stream:
    def __init__(self, sub: Subscription, user_id: int | None) -> None:
        self.id = uuid.uuid4().hex
        self.sub = sub
        self.user_id = user_id
        self.view: dict[str, UnitRec] = {}  # units in the subscription's bbox, as last sent
        self.latest_t: dict[str, float] = {}  # every unit of the scope seen, in the bbox or not
        self.pending: dict[str, UnitRec | None] = {}  # None: the unit left the view
        self.stale_keys: set[str] = set()
        # (t, key) of the units sent fresh, to find the ones that turn stale; entries superseded
        # by a later record are skipped when popped and dropped when the heap is rebuilt.
        self._stale_heap: list[tuple[float, str]] = []
        self._buffer: list[UnitRec] | None = []  # events that arrive while the snapshot is read
        self.seq = 0
        self.ring: deque[tuple[int, str]] = deque()
        self._ring_bytes = 0
        self._ring_cap = RESUME_MIN_BYTES
        self.sink: Sink | None = None
        self.detached_at: float | None = time.monotonic()
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
        every stream on every event, so the common cases skip the per-record tests."""
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
                continue  # not newer than what this stream has: out of order or a repeat
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

    def install_snapshot(self, records: list[dict[str, Any]], intern: Callable[[dict[str, Any]], UnitRec] = _own_record) -> str:
        """Merge the snapshot read from the database with the events that arrived meanwhile;
        return the snapshot message (sequence 0 of this stream). `intern` shares one UnitRec
        (and its encoded JSON) per unit version between the streams of the process."""
        for data in records:
            rec = intern(data)
            self.view[rec.key] = rec
            self.latest_t[rec.key] = rec.t
        buffered, self._buffer = self._buffer or [], None
        self.offer(buffered)
        self.pending.clear()
        now = time.time()
        cutoff = now - self.stale_after
        units = []
        heap = self._stale_heap = []
        for key, rec in self.view.items():
            stale = rec.t < cutoff
            if stale:
                self.stale_keys.add(key)
            else:
                heap.append((rec.t, key))
            units.append(rec.encode(stale, snapshot=True))
        heapq.heapify(heap)
        text = (f'{{"type":"snapshot","stream":"{self.id}","seq":0,"ts":{now:.4f},'
                f'"stale_after":{self.stale_after:g},"subscription":{json.dumps(self.sub.to_json())},'
                f'"units":[{",".join(units)}]}}')
        self._ring_cap = max(RESUME_MIN_BYTES, len(text))
        return text

    @property
    def ready(self) -> bool:
        """The snapshot is installed: frames and resumes make sense from here."""
        return self._buffer is None

    # --- frames out --------------------------------------------------------------------------

    def _sweep_stale(self, now: float) -> None:
        cutoff = now - self.stale_after
        heap = self._stale_heap
        while heap and heap[0][0] < cutoff:
            t, key = heapq.heappop(heap)
            rec = self.view.get(key)
            if rec is not None and rec.t == t and key not in self.stale_keys:
                self.pending[key] = rec

    def make_frame(self) -> str | None:
        now = time.time()
        self._sweep_stale(now)
        if not self.pending:
            return None
        cutoff = now - self.stale_after
        units: list[str] = []
        removed: list[str] = []
        stale_keys, heap = self.stale_keys, self._stale_heap
        push, add, discard, append = heapq.heappush, stale_keys.add, stale_keys.discard, units.append
        for key, rec in self.pending.items():  # the hot loop: every unit of every frame of every stream
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
        self.seq += 1
        text = (f'{{"type":"frame","stream":"{self.id}","seq":{self.seq},"ts":{now:.4f},'
                f'"units":[{",".join(units)}],"removed":{json.dumps(removed)}}}')
        self.ring.append((self.seq, text))
        self._ring_bytes += len(text)
        limit = conf.get("RESUME_FRAMES")
        while (len(self.ring) > limit or self._ring_bytes > self._ring_cap) and len(self.ring) > 1:
            self._ring_bytes -= len(self.ring.popleft()[1])
        return text

    def replay_after(self, seq: Any) -> list[str] | None:
        """The frames after `seq`, or None when they are no longer all here."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.ring or self.ring[0][0] > seq + 1:
            return None
        return [text for s, text in self.ring if s > seq]

    # --- the screen ---------------------------------------------------------------------------

    async def attach(self, sink: Sink) -> None:
        previous, self.sink, self.detached_at = self.sink, sink, None
        if previous is not None and previous is not sink:
            await previous.stream_taken_over()
        self.wakeup.set()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"stream {self.id}")

    def detach(self, sink: Sink) -> None:
        if self.sink is sink:
            self.sink, self.detached_at = None, time.monotonic()

    def close(self) -> None:
        self.sink = None
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        """Send at most MAX_FRAMES_PER_S frames a second; a quiet stream still wakes each second
        to mark units that went stale. While detached, updates stay coalesced in `pending`."""
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
            sink = self.sink
            if sink is None:
                self._sweep_stale(time.time())
                continue
            text = self.make_frame()
            last = time.monotonic()
            if text is not None:
                try:
                    await sink.send_stream_text(text)
                except Exception:  # the socket went away mid-send; the frame stays in the ring
                    log.info("stream %s: send failed; detaching", self.id)
                    self.detach(sink)
