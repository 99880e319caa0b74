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
from typing import Any, Protocol

from realtime import conf
from realtime.units import Subscription

log = logging.getLogger(__name__)

# Keep the replay buffer at most as large as a snapshot (a client further behind is better served
# by a new snapshot), but never smaller than this.
RESUME_MIN_BYTES = 256 * 1024


class Sink(Protocol):
    async def send_stream_text(self, text: str) -> None: ...

    async def stream_taken_over(self) -> None: ...


class UnitRec:
    """A unit record shared by every stream of the process; its JSON is encoded once."""

    __slots__ = ("data", "key", "t", "_fresh_json", "committed_at")

    def __init__(self, data: dict[str, Any], committed_at: float | None = None) -> None:
        self.data = data
        self.key: str = data["key"]
        self.t: float = data["t"]
        self.committed_at = committed_at
        self._fresh_json: str | None = None

    def encode(self, stale: bool) -> str:
        if stale:
            return json.dumps(self._payload(True), ensure_ascii=False)
        if self._fresh_json is None:
            self._fresh_json = json.dumps(self._payload(False), ensure_ascii=False)
        return self._fresh_json

    def _payload(self, stale: bool) -> dict[str, Any]:
        payload = {**self.data, "stale": stale}
        if self.committed_at is not None:
            payload["committed_at"] = round(self.committed_at, 4)
        return payload


class Stream:
    def __init__(self, sub: Subscription, user_id: int | None) -> None:
        self.id = uuid.uuid4().hex
        self.sub = sub
        self.user_id = user_id
        self.view: dict[str, UnitRec] = {}  # units in the subscription's bbox, as last sent
        self.latest_t: dict[str, float] = {}  # every unit of the scope seen, in the bbox or not
        self.pending: dict[str, UnitRec | None] = {}  # None: the unit left the view
        self.stale_keys: set[str] = set()
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

    # --- events in ---------------------------------------------------------------------------

    def offer(self, records: list[UnitRec]) -> None:
        if self._buffer is not None:
            self._buffer.extend(r for r in records if self.sub.in_scope(r.data))
            return
        changed = False
        for rec in records:
            changed |= self._apply(rec)
        if changed:
            self.wakeup.set()

    def _apply(self, rec: UnitRec) -> bool:
        if not self.sub.in_scope(rec.data):
            return False
        key = rec.key
        if self.latest_t.get(key, float("-inf")) >= rec.t:
            return False  # not newer than what this stream has: out of order or a repeat
        self.latest_t[key] = rec.t
        if self.sub.in_view(rec.data):
            self.view[key] = rec
            self.pending[key] = rec
            heapq.heappush(self._stale_heap, (rec.t, key))
            if len(self._stale_heap) > 4 * len(self.view) + 64:  # drop superseded entries
                self._stale_heap = [(r.t, k) for k, r in self.view.items()]
                heapq.heapify(self._stale_heap)
        elif key in self.view:
            del self.view[key]
            self.stale_keys.discard(key)
            self.pending[key] = None
        else:
            return False
        return True

    def install_snapshot(self, records: list[dict[str, Any]]) -> str:
        """Merge the snapshot read from the database with the events that arrived meanwhile;
        return the snapshot message (sequence 0 of this stream)."""
        for data in records:
            rec = UnitRec(data)
            self.view[rec.key] = rec
            self.latest_t[rec.key] = rec.t
        self._stale_heap = [(r.t, k) for k, r in self.view.items()]
        heapq.heapify(self._stale_heap)
        buffered, self._buffer = self._buffer or [], None
        for rec in buffered:
            self._apply(rec)
        self.pending.clear()
        now = time.time()
        units = []
        for key, rec in self.view.items():
            stale = rec.t < now - self.stale_after
            if stale:
                self.stale_keys.add(key)
            units.append(rec.encode(stale))
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
        units, removed = [], []
        for key, rec in self.pending.items():
            if rec is None:
                removed.append(key)
                continue
            stale = rec.t < now - self.stale_after
            (self.stale_keys.add if stale else self.stale_keys.discard)(key)
            units.append(rec.encode(stale))
        self.pending.clear()
        self.seq += 1
        text = (f'{{"type":"frame","stream":"{self.id}","seq":{self.seq},"ts":{now:.4f},'
                f'"units":[{",".join(units)}],"removed":{json.dumps(removed)}}}')
        self.ring.append((self.seq, text))
        self._ring_bytes += len(text)
        while (len(self.ring) > conf.get("RESUME_FRAMES") or self._ring_bytes > self._ring_cap) and len(self.ring) > 1:
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
