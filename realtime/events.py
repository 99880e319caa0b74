"""The one way any domain tells screens and devices that something changed: `send_event`.

Events leave only after the surrounding transaction commits (`transaction.on_commit`), so a
screen never sees a change that is later rolled back, and a 2xx answer to the writer always
precedes or accompanies the event. Delivery goes through the channel layer (in memory in one
process; Redis across processes), to one group per audience:

- `district=X`: screens whose jurisdiction covers district X (city, X, or a street of X);
- `device=D`: the field app of device D (pushes);
- neither: every screen (city-wide notices);
- `send_district_events`: one message for many districts (positions), filtered by each hub.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

EVENT_TYPE = "rt.event"  # the channel-layer message type; consumers handle it as rt_event
ALL_GROUP = "rt.all"
DISTRICTS_GROUP = "rt.districts"  # events keyed by district (send_district_events); every hub joins it
# A notice that events were lost (a publish failed): every hub that receives it rebuilds its
# feeds from the database. Sent, before anything else, by the next publish that gets through.
MISSED_KIND = "missed"
# This process's hubs (realtime.hub), told at once when one of its publishes failed.
PUBLISH_WATCHERS: weakref.WeakSet[Any] = weakref.WeakSet()
PUBLISH_RETRY_S = 1.0


class _Missed:
    """Events this process could not publish, until a notice about them got through."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures = 0
        self.since: float | None = None  # the first and the last lost event (time.time())
        self.last: float | None = None
        self.skip_until = 0.0  # monotonic: publish nothing before (the layer just failed)


_missed = _Missed()
_GROUP_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def district_group(code: str) -> str:
    return f"rt.district.{code}"


def device_group(device_id: str) -> str:
    # Group names allow only [A-Za-z0-9_.-] and < 100 characters; other device ids are hashed.
    if _GROUP_SAFE.match(device_id):
        return f"rt.device.{device_id}"
    return "rt.device.h" + hashlib.sha256(device_id.encode()).hexdigest()[:40]


def send_event(kind: str, data: Any, *, district: str | None = None, device: str | None = None) -> None:
    """Publish `data` (JSON-able: dicts, lists, str, numbers, None) after the current commit."""
    if device is not None:
        group = device_group(device)
    elif district is not None:
        group = district_group(district)
    else:
        group = ALL_GROUP
    transaction.on_commit(lambda: _publish(kind, [(group, district, data)]), robust=True)


def send_district_events(kind: str, by_district: dict[str, list[Any]]) -> None:
    """Many districts' data from one commit (a batch of fixes touches up to every district) as ONE
    message to `DISTRICTS_GROUP`, keyed by district: `{"by_district": {code: [...]}}`. Every hub
    joins that group and hands each district's part only to the screens that may see it. One
    message instead of one per district: with Redis, receiving costs a few round trips per
    message whatever its size, and 16 messages per batch kept a busy process from keeping up."""
    if by_district:
        transaction.on_commit(lambda: _publish(kind, [(DISTRICTS_GROUP, None, None)], by_district), robust=True)


def _publish(kind: str, sends: list[tuple[str, str | None, Any]], by_district: dict[str, Any] | None = None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    with _missed.lock:
        failures, since, last = _missed.failures, _missed.since, _missed.last
        skipping = time.monotonic() < _missed.skip_until
    if skipping:  # the layer failed a moment ago: this commit does not wait for it again
        _publish_failed("the channel layer is unreachable", tried=False)
        return
    # committed_at lets screens and benchmarks measure commit-to-screen latency. Messages are
    # read-only from here on (the in-memory layer hands the same dict to every receiver).
    committed_at = time.time()
    messages = []
    if since is not None:
        messages.append((DISTRICTS_GROUP, {"type": EVENT_TYPE, "kind": MISSED_KIND, "data": None,
                                           "since": since, "last": last, "committed_at": committed_at}))
    for group, district, data in sends:
        message = {"type": EVENT_TYPE, "kind": kind, "data": data, "committed_at": committed_at}
        if district is not None:
            message["district"] = district
        if by_district is not None:
            message["by_district"] = by_district
        messages.append((group, message))
    try:
        async_to_sync(_group_send_all)(layer, messages)
    except Exception as error:  # the write is committed; a broken layer must not turn it into a 500
        log.warning("send_event: publishing %s to %s failed: %r", kind, ", ".join(g for g, _ in messages), error)
        _publish_failed(f"an event could not be published ({type(error).__name__})")
        return
    if since is not None:
        with _missed.lock:
            if _missed.failures == failures:  # no other loss since the notice was made
                _missed.since = _missed.last = None


def _publish_failed(reason: str, tried: bool = True) -> None:
    """The event is lost: this process's hubs rebuild their feeds as soon as they can, the next
    publish that gets through tells every other process's hubs to do the same, and for
    PUBLISH_RETRY_S commits do not wait for the layer (each would wait for its timeouts)."""
    now = time.time()
    with _missed.lock:
        _missed.failures += 1
        if _missed.since is None:
            _missed.since = now
        _missed.last = now
        if tried:  # (a skipped publish does not put the next try off)
            _missed.skip_until = time.monotonic() + PUBLISH_RETRY_S
    for watcher in list(PUBLISH_WATCHERS):
        watcher.publish_failed(reason)


async def _group_send_all(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
    if len(messages) == 1:
        await layer.group_send(*messages[0])
        return
    if messages[0][1]["kind"] == MISSED_KIND:  # the notice first: a hub then rebuilds after it
        await layer.group_send(*messages[0])
        messages = messages[1:]
    results = await asyncio.gather(*(layer.group_send(group, message) for group, message in messages),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
