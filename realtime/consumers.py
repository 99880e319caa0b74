"""The two sockets: /ws/map for screens (snapshot, then coalesced numbered frames, resume) and
/ws/field for field units (fixes in, pushes out). Thin: the rules live in actions, units and
streams. A bad frame gets an error message and the socket stays open."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.jurisdiction import Jurisdiction
from config import dbhealth, jsonparse
from config.limits import WS_MAX_BYTES
from config.problems import Problem
from realtime import conf
from realtime.actions import (
    PushInvalid,
    do_ack_push,
    do_ingest_fixes,
    do_mark_delivered,
    pending_pushes,
    push_message,
)
from realtime.auth import CLOSE_TRY_AGAIN_LATER
from realtime.devices import DeviceIdentity
from realtime.events import ALL_GROUP, EVENT_TYPE, device_group, district_group
from realtime.fixes import CRS_NAMES
from realtime.hub import Hub
from realtime.streams import Stream
from realtime.units import Subscription, SubscriptionInvalid, check_subscription, district_codes, load_snapshot

log = logging.getLogger(__name__)

# A field app's batch of buffered fixes fits; a screen's request is tiny. The server itself refuses
# larger frames (uvicorn --ws-max-size, config/http.py) before buffering them; this is the check
# for any other server.
MAX_FRAME_BYTES = WS_MAX_BYTES
CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_TOO_SLOW, CLOSE_TAKEN_OVER = 4401, 4403, 4408, 4409


class JsonSocket(AsyncWebsocketConsumer):
    # A socket that takes fixes lets NaN through to parse_fix, as the HTTP ingest does.
    allow_nan = False

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, ensure_ascii=False, allow_nan=False))

    async def send_error(self, error: str, detail: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "error": error, "detail": detail, **extra})

    async def refuse(self, code: int, error: str, detail: str) -> None:
        await self.accept()
        await self.send_error(error, detail)
        await self.close(code=code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error("bad_frame", "send JSON text frames, not binary")
            return
        if len(text_data) > MAX_FRAME_BYTES:
            await self.send_error("frame_too_large", f"a frame is at most {MAX_FRAME_BYTES} bytes")
            return
        try:
            message = jsonparse.loads(text_data, allow_nan=self.allow_nan)
        except jsonparse.JsonInvalid as error:
            await self.send_error(error.reason, error.detail)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.send_error("bad_frame", 'a frame is a JSON object with a "type"')
            return
        handler = self.handlers().get(message["type"])
        if handler is None:
            await self.send_error("unknown_type", f"unknown type {message['type'][:40]!r}",
                                  known=sorted(self.handlers()))
            return
        try:
            await handler(message)
        except OSError as error:
            # The client went away while its frame was answered (an ASGI server raises an OSError
            # on a send to a closed socket, uvicorn its ClientDisconnected): what the handler did
            # stands (an ack is recorded), and there is nobody left to tell.
            log.debug("%s: the client left during its %r frame: %r", type(self).__name__, message["type"][:40], error)
        except Exception:
            # A handler's bug must not drop the socket without a close frame (and every other
            # subscription of the screen with it): the frame is answered, the bug logged.
            log.exception("%s: the %r frame failed", type(self).__name__, message["type"][:40])
            await self.send_error("server_error", "this frame could not be handled; the failure is logged",
                                  ref=_ref(message))

    def handlers(self) -> dict[str, Any]:
        return {"ping": self.on_ping}

    async def on_ping(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "pong", "ref": _ref(message)})


def _ref(message: dict[str, Any]) -> Any:
    """The client's ref echoed back, if it is a plain value (a ref is the client's own id)."""
    ref = message.get("ref")
    if isinstance(ref, float) and not math.isfinite(ref):
        return None  # json.dumps would write NaN, which is no JSON
    return ref if ref is None or isinstance(ref, str | int | float) else None


def _split_tasks_layer(message: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """Whether the `tasks` layer is asked for, and the subscription of units without it (None
    when no unit layer is left). `tasks` is not a kind of unit: the unit checks never see it."""
    layers = message.get("layers")
    if not isinstance(layers, list) or "tasks" not in [layer for layer in layers if isinstance(layer, str)]:
        return False, message
    units = [layer for layer in layers if layer != "tasks"]
    return True, ({**message, "layers": units} if units else None)


def _groups_for(sub: Subscription) -> set[str]:
    if sub.scope.level == "city":
        return {ALL_GROUP, *(district_group(code) for code in district_codes())}
    return {ALL_GROUP, district_group(sub.scope.district or "")}


class MapConsumer(JsonSocket):
    stream: Stream | None = None
    # No channel-layer listener of its own: a screen's events come through the process's hub, and
    # a listener would only be one more thing that a failing Redis could take down.
    channel_layer_alias = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHORIZED, "unauthorized", "log in, or connect with ?token=<API token>")
            return
        self.user_id = user.id
        try:
            dbhealth.check()
            self.jurisdiction = await database_sync_to_async(Jurisdiction.of)(user)
        except Exception as error:
            if not isinstance(error, Problem) and not dbhealth.note_failure(error):
                raise
            await self.accept()
            await self.close(code=CLOSE_TRY_AGAIN_LATER)  # PostgreSQL away: connect again later
            return
        if self.jurisdiction.level == "none":
            await self.refuse(CLOSE_FORBIDDEN, "forbidden", "this account has no jurisdiction")
            return
        await self.accept()
        await self.send_json({"type": "hello", "jurisdiction": self.jurisdiction.label,
                              "stale_after": conf.get("STALE_AFTER_S"), "max_frames_per_s": conf.get("MAX_FRAMES_PER_S")})

    async def disconnect(self, code: int) -> None:
        if self.stream is not None:
            self.stream.detach(self)

    def handlers(self) -> dict[str, Any]:
        return {**super().handlers(), "subscribe": self.on_subscribe}

    async def on_subscribe(self, message: dict[str, Any]) -> None:
        tasks, units = _split_tasks_layer(message)
        try:
            sub = check_subscription(units if units is not None else {**message, "layers": ["officers"]},
                                     self.jurisdiction)
        except SubscriptionInvalid as error:
            await self.send_error("invalid_subscription", str(error))
            return
        if tasks:  # the tasks layer, with the unit layers asked for (none: no units)
            sub = dataclasses.replace(sub, tasks=True, kinds=sub.kinds if units is not None else frozenset())
        hub = await Hub.get()
        if message.get("resume") is not None and await self._resume(hub, message["resume"]):
            return
        if self.stream is not None:
            hub.drop_stream(self.stream)
        stream, creator = hub.open_stream(sub, self.user_id)
        self.stream = stream
        assert stream.feed is not None
        feed = stream.feed
        if creator:
            # Join the groups before reading the snapshot: an event committed after the read is
            # then sure to reach the feed, and one committed before it is ignored as not newer.
            try:
                dbhealth.check()  # PostgreSQL known to be away: say so now, not after the pool's timeout
                await hub.join(await database_sync_to_async(_groups_for)(sub))
                records = await database_sync_to_async(load_snapshot)(sub)
            except Exception:
                log.exception("map: the snapshot of %s could not be read", sub.to_json())
                feed.fail()
            else:
                feed.install(records, hub.intern)
        else:  # the feed's view is the snapshot: read from the database once, kept up by events
            await feed.ready.wait()
            if hub.lagging is not None and not feed.failed:
                # ... unless events may have been missed: then the view is read again first.
                try:
                    await hub.reload(feed)
                except Exception:
                    log.exception("map: the snapshot of %s could not be read", sub.to_json())
                    hub.drop_stream(stream)
                    self.stream = None
                    await self.send_error("snapshot_failed", "the snapshot could not be read; subscribe again")
                    return
        if feed.failed:
            hub.drop_stream(stream)
            self.stream = None
            await self.send_error("snapshot_failed", "the snapshot could not be read; subscribe again")
            return
        await self.send(text_data=stream.snapshot_text())
        await stream.attach(self)
        self._tell_lagging(hub, stream)
        await self._send_open_tasks(stream)

    async def _send_open_tasks(self, stream: Stream) -> None:
        """The tasks layer's starting state, queued after attaching: a task event that comes in
        meanwhile may reach the screen before it, and screens keep the higher `version` of a task."""
        if stream.sub.tasks:
            from command.live import open_tasks  # dispatch builds on realtime, not the reverse

            body = await database_sync_to_async(open_tasks)(self.scope.get("user"), stream.sub)
            stream.notice(json.dumps(body, ensure_ascii=False))

    @staticmethod
    def _tell_lagging(hub: Hub, stream: Stream) -> None:
        # In the outbox, so that a caught_up sent later cannot overtake it.
        if hub.lagging is not None:
            stream.notice(json.dumps({"type": "lagging", "detail": hub.lagging}))

    async def _resume(self, hub: Hub, resume: Any) -> bool:
        stream_id = resume.get("stream") if isinstance(resume, dict) else None
        stream = hub.streams.get(stream_id) if isinstance(stream_id, str) else None
        frames = None
        if stream is None or stream.user_id != self.user_id or not stream.ready:
            reason = "unknown_stream"  # expired, never existed, or served by another server process
        else:
            previous = stream.sink
            if previous is not None and previous is not self:
                stream.detach(previous)  # no frame is made from here until we attach
                await previous.stream_taken_over()
            frames = stream.replay_after(resume.get("seq"))
            reason = "too_far_behind"
        if frames is None:
            await self.send_json({"type": "resync", "reason": reason,
                                  "detail": "the stream cannot be resumed; a new snapshot follows"})
            return False
        assert stream is not None  # frames is only set once the stream was found
        if self.stream is not None and self.stream is not stream:
            hub.drop_stream(self.stream)
        self.stream = stream
        await self.send_json({"type": "resumed", "stream": stream.id, "seq": resume.get("seq"),
                              "replayed": len(frames), "subscription": stream.sub.to_json()})
        for text in frames:
            await self.send(text_data=text)
        await stream.attach(self)
        self._tell_lagging(hub, stream)
        await self._send_open_tasks(stream)  # task messages are not replayed: their state is sent again
        return True

    async def send_stream_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def stream_taken_over(self) -> None:
        self.stream = None
        await self.close(code=CLOSE_TAKEN_OVER)

    async def stream_too_slow(self) -> None:
        """The screen took frames slower than they came; it may resume or subscribe again."""
        await self.close(code=CLOSE_TOO_SLOW)


def _identity_for_user(user: Any) -> DeviceIdentity | None:
    """A field officer logged in on the phone's browser reports as the officer's device."""
    if user is None or not user.is_authenticated:
        return None
    profile = getattr(user, "profile", None)
    officer = getattr(profile, "officer", None) if profile else None
    return DeviceIdentity(officer.device_id) if officer else None


class FieldConsumer(JsonSocket):
    identity: DeviceIdentity | None = None
    gone = False  # disconnected: nothing to catch up
    allow_nan = True

    async def connect(self) -> None:
        identity = self.scope.get("device") or await database_sync_to_async(_identity_for_user)(self.scope.get("user"))
        if identity is None:
            await self.refuse(CLOSE_UNAUTHORIZED, "unauthorized", "connect with ?token=<device token>")
            return
        if identity.gateway:
            await self.refuse(CLOSE_FORBIDDEN, "forbidden", "a gateway token reports through POST /api/positions")
            return
        self.identity = identity
        self.delivered: set[str] = set()
        self.group = device_group(identity.device_id)
        # The hub watches the layer and calls layer_recovered() after an outage.
        (await Hub.get()).listeners.add(self)
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception as error:  # pushes still come from the database on every (re)connect
            log.warning("field: joining %s failed (%r); joining again when the layer is back", self.group, error)
        await self.accept()
        await self.send_json({"type": "hello", "device_id": identity.device_id})
        # Redelivery: everything not yet acknowledged, oldest first, on every (re)connect.
        pushes = await database_sync_to_async(pending_pushes)(identity.device_id)
        await self._deliver([push_message(p) for p in pushes])

    async def disconnect(self, code: int) -> None:
        if self.identity is not None:
            self.gone = True
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception as error:  # the membership expires by itself
                log.warning("field: leaving %s failed (%r)", self.group, error)

    # Channels assigns the socket's channel-layer listener to `channel_receive`; this puts a
    # listener in its place that outlives a failing layer instead of closing the socket.
    @property
    def channel_receive(self) -> Any:
        return self._listen

    @channel_receive.setter
    def channel_receive(self, receive: Any) -> None:
        self._layer_receive = receive

    async def _listen(self) -> dict[str, Any]:
        backoff, failed = 0.1, False
        while True:
            try:
                message: dict[str, Any] = await self._layer_receive()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failed:
                    log.warning("field: the channel layer failed (%r); retrying", error)
                failed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if failed:
                await self.layer_recovered()
            return message

    async def layer_recovered(self) -> None:
        """After an outage: the device group was forgotten, and pushes sent meanwhile were lost."""
        if self.identity is None or self.gone:
            return
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            pushes = await database_sync_to_async(pending_pushes)(self.identity.device_id)
            await self._deliver([push_message(p) for p in pushes])
        except Exception as error:
            log.warning("field: catching up %s failed (%r)", self.group, error)

    async def _deliver(self, messages: list[dict[str, Any]]) -> None:
        fresh = [m for m in messages if m["id"] not in self.delivered]
        for message in fresh:
            await self.send_json({**message, "type": "push"})
            self.delivered.add(message["id"])
        if fresh:
            await database_sync_to_async(do_mark_delivered)([m["id"] for m in fresh])

    async def rt_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == EVENT_TYPE and event.get("kind") == "push":
            await self._deliver([event["data"]])

    def handlers(self) -> dict[str, Any]:
        return {**super().handlers(), "fix": self.on_fixes, "fixes": self.on_fixes, "ack": self.on_ack}

    async def on_fixes(self, message: dict[str, Any]) -> None:
        assert self.identity is not None
        fixes = message.get("fixes") if message["type"] == "fixes" else [message.get("fix", message)]
        crs = message.get("crs", "wgs84")
        if not isinstance(fixes, list) or crs not in CRS_NAMES:
            await self.send_error("bad_frame", f"fixes is a list; crs one of {', '.join(CRS_NAMES)}", ref=_ref(message))
            return
        if len(fixes) > conf.get("MAX_BATCH_FIXES"):
            await self.send_error("batch_too_large", f"at most {conf.get('MAX_BATCH_FIXES')} fixes", ref=_ref(message))
            return
        fixes = [dict(f, device_id=f.get("device_id", self.identity.device_id)) if isinstance(f, dict) else f
                 for f in fixes]
        fixes = [{k: v for k, v in f.items() if k != "type"} if isinstance(f, dict) else f for f in fixes]
        try:
            dbhealth.check()
            report = await database_sync_to_async(do_ingest_fixes)(fixes, self.identity, default_crs=crs)
        except Exception as error:  # PostgreSQL away: the app keeps its fixes and sends them again
            if not isinstance(error, Problem) and not dbhealth.note_failure(error):
                raise
            await self.send_error("database_unavailable", "the database is unavailable; send the fixes again later",
                                  ref=_ref(message), retry_after=dbhealth.RETRY_AFTER_S)
            return
        await self.send_json({"type": "fix_result", "ref": _ref(message), **report.summary()})

    async def on_ack(self, message: dict[str, Any]) -> None:
        assert self.identity is not None
        try:
            push = await database_sync_to_async(do_ack_push)(self.identity.device_id, message.get("id"))
        except PushInvalid as error:
            await self.send_error("invalid_ack", str(error), id=str(message.get("id"))[:64])
            return
        await self.send_json({"type": "acked", "id": str(push.id), "acked_at": push.acked_at.isoformat()})
