"""The in-memory channel layer (one server process, no REDIS_URL) without the copy per send.

Channels' InMemoryChannelLayer deep-copies every message for every receiving channel, so that a
receiver cannot change what another one sees. The realtime events are never changed after they
are sent (realtime.events builds them, the hub and consumers only read them), and a batch of
fixes is a list of a few hundred dicts: the copies were ~7 % of the server's time at 2,000
fixes/s (bench/RESULTS.md). This layer hands the same dict to every receiver instead. A message
that a receiver does change must be copied by that receiver."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class SharedInMemoryChannelLayer(InMemoryChannelLayer):
    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.queues.QueueFull:
            raise ChannelFull(channel) from None
