"""The one way any domain tells screens and devices that something changed: `send_event`.

Events leave only after the surrounding transaction commits (`transaction.on_commit`), so a
screen never sees a change that is later rolled back, and a 2xx answer to the writer always
precedes or accompanies the event. Delivery goes through the channel layer (in memory in one
process; Redis across processes), to one group per audience:

- `district=X`: screens whose jurisdiction covers district X (city, X, or a street of X);
- `device=D`: the field app of device D (pushes);
- neither: every screen (city-wide notices).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

EVENT_TYPE = "rt.event"  # the channel-layer message type; consumers handle it as rt_event
ALL_GROUP = "rt.all"
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
    transaction.on_commit(lambda: _publish(group, kind, data), robust=True)


def _publish(group: str, kind: str, data: Any) -> None:
    # committed_at lets screens and benchmarks measure commit-to-screen latency.
    message = {"type": EVENT_TYPE, "kind": kind, "data": data, "committed_at": time.time()}
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # the write is committed; a broken layer must not turn it into a 500
        log.exception("send_event: publishing %s to %s failed", kind, group)
