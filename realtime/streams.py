"""A screen's stream: its numbered frames, its resume ring and its socket.

What a subscription sees (the view, coalescing, staleness) is its feed's (realtime/feeds.py),
shared by every stream with the same subscription; a stream adds its own header (stream id,
sequence number) to each frame body of its feed, keeps its last frames for a resume, and sends
them to its socket through an outbox, so that one slow screen never holds up the others.

A stream lives in the server process, not in the socket: when the screen's connection drops the
stream keeps collecting (coalesced, in a private copy of the feed, so its memory stays bounded
by the units it sees) for RESUME_GRACE_S, and a reconnecting screen that names the stream and the
last sequence number it processed gets the missing frames replayed, then the live frames
continue with no gap.

Sequence numbers are assigned here, at fan-out time; they never depend on database commit order.
Each unit's record carries its fix time `t`, and a record not newer than what the feed already
holds for that unit is ignored, so events that arrive out of order (two commits published in the
opposite order) cannot move a unit back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from realtime import conf
from realtime.units import Subscription

if TYPE_CHECKING:
    from realtime.feeds import Feed

log = logging.getLogger(__name__)

# Keep the replay buffer at most as large as a snapshot (a client further behind is better served
# by a new snapshot), but never smaller than this.
RESUME_MIN_BYTES = 256 * 1024


class Sink(Protocol):
    async def send_stream_text(self, text: str) -> None: ...

    async def stream_taken_over(self) -> None: ...

    async def stream_too_slow(self) -> None: ...


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


class Stream:
    def __init__(self, user_id: int | None) -> None:
        self.id = uuid.uuid4().hex
        self.user_id = user_id
        self.feed: Feed | None = None  # set when it joins one
        self.installed = False  # its snapshot was taken: frames from here on are its own
        self.seq = 0
        # (seq, header, body): bodies are shared with the other streams of the feed.
        self.ring: deque[tuple[int, str, str]] = deque()
        self._ring_bytes = 0
        self._ring_cap = RESUME_MIN_BYTES
        self.sink: Sink | None = None
        self.away = False  # its screen went away (a resume may bring it back)
        self.detached_at: float | None = time.monotonic()  # for the janitor: not attached since
        self.outbox: deque[str] = deque()
        self._outbox_bytes = 0
        self._sender: asyncio.Task[None] | None = None
        self._sending_since: float | None = None  # monotonic start of the send not finished yet

    @property
    def sub(self) -> Subscription:
        assert self.feed is not None
        return self.feed.sub

    @property
    def ready(self) -> bool:
        """The snapshot is taken: frames and resumes make sense from here."""
        return self.installed

    def snapshot_text(self) -> str:
        """The snapshot message (sequence 0 of this stream), from its feed's view."""
        assert self.feed is not None and self.feed.ready.is_set()
        units = self.feed.snapshot_units()
        self.installed = True
        now = time.time()
        text = (f'{{"type":"snapshot","stream":"{self.id}","seq":0,"ts":{now:.4f},'
                f'"stale_after":{self.feed.stale_after:g},"subscription":{json.dumps(self.sub.to_json())},'
                f'"units":[{",".join(units)}]}}')
        self._ring_cap = max(RESUME_MIN_BYTES, len(text))
        return text

    # --- frames out --------------------------------------------------------------------------

    def emit(self, body: str, now: float) -> None:
        """A frame of the feed: numbered, kept for a resume, and sent when the socket is there."""
        self.seq += 1
        header = f'{{"type":"frame","stream":"{self.id}","seq":{self.seq},"ts":{now:.4f},'
        self.ring.append((self.seq, header, body))
        self._ring_bytes += len(body)
        limit = conf.get("RESUME_FRAMES")
        while (len(self.ring) > limit or self._ring_bytes > self._ring_cap) and len(self.ring) > 1:
            self._ring_bytes -= len(self.ring.popleft()[2])
        self.outbox.append(header + body)
        self._outbox_bytes += len(body)
        if self._outbox_bytes > self._ring_cap and len(self.outbox) > 1:
            # The socket takes frames slower than they come: let it go (the client may resume,
            # or take a new snapshot) rather than hold an ever longer queue.
            self._let_go("the screen cannot keep up")
            return
        self._start_sending()

    def check_stalled(self, now: float) -> None:
        """A socket that has not taken a frame for SLOW_SCREEN_S while frames wait is let go too
        (4408), whatever the rate: a screen that stopped reading is found by this bound even when
        its frames are small, before the server's WebSocket keepalive (a 1011) would act."""
        started = self._sending_since
        if started is not None and self.outbox and now - started > conf.get("SLOW_SCREEN_S"):
            self._let_go(f"the screen took no frame for {now - started:.0f} s")

    def _let_go(self, why: str) -> None:
        sink = self.sink
        if sink is not None:
            log.info("stream %s: %s; closing its socket", self.id, why)
            self.detach(sink)
            asyncio.get_running_loop().create_task(sink.stream_too_slow())

    def _start_sending(self) -> None:
        if self.sink is not None and self.outbox and (self._sender is None or self._sender.done()):
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox(self.sink))

    async def _send_outbox(self, sink: Sink) -> None:
        while self.outbox and self.sink is sink:
            text = self.outbox[0]
            self._sending_since = time.monotonic()
            try:
                await sink.send_stream_text(text)
            except Exception:  # the socket went away mid-send; the frame stays in the ring
                log.info("stream %s: send failed; detaching", self.id)
                self.detach(sink)
                return
            finally:
                self._sending_since = None
            if self.outbox and self.outbox[0] is text:
                self.outbox.popleft()
                self._outbox_bytes -= len(text)

    def notice(self, text: str) -> None:
        """A message outside the numbered frames (lagging, caught_up), to the screen if it is
        there: it goes through the outbox, after the frames queued before it."""
        if self.sink is None or not self.installed:
            return
        self.outbox.append(text)
        self._outbox_bytes += len(text)
        self._start_sending()

    def replay_after(self, seq: Any) -> list[str] | None:
        """The frames after `seq`, or None when they are no longer all here."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.ring or self.ring[0][0] > seq + 1:
            return None
        return [header + body for s, header, body in self.ring if s > seq]

    # --- the screen ---------------------------------------------------------------------------

    async def attach(self, sink: Sink) -> None:
        previous, self.sink, self.detached_at, self.away = self.sink, sink, None, False
        if previous is not None and previous is not sink:
            await previous.stream_taken_over()
        self._start_sending()
        if self.feed is not None:
            self.feed.wakeup.set()

    def detach(self, sink: Sink) -> None:
        """The screen went away: what was not sent is in the ring, for a resume."""
        if self.sink is sink:
            self.sink, self.detached_at, self.away = None, time.monotonic(), True
            self.outbox.clear()
            self._outbox_bytes = 0

    def close(self) -> None:
        self.sink = None
        if self._sender is not None:
            self._sender.cancel()
        if self.feed is not None:
            self.feed.leave(self)
