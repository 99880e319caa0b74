"""The WebSocket protocol OneMap's uvicorn runs (`--ws config.ws:BoundedCloseWebSocketProtocol`):
uvicorn's websockets-sansio protocol, except that a close from the application goes out at once.

Why: uvicorn's `send()` waits until the transport is writable before anything, a close included.
A screen that stopped reading never makes it writable again, so the stream's documented "too
slow" close (4408, realtime/README.md) waited behind the frames it could not send, and the
keepalive (ping every 20 s, 20 s to answer) cut the socket first with a 1011. Here the close
frame is queued behind what is buffered (the screen reads it after the frames it has not read)
and the transport is closed after the close timeout — aborted if even that cannot flush, so a
dead peer holds nothing for long. The keepalive stays for connections that are simply gone
(server_command sets it to act only well after the streams' own bounds). The kernel's send
buffer of these sockets is bounded, so that a screen that stopped reading shows as one within
seconds instead of after megabytes."""

from __future__ import annotations

import socket
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# Keepalive: a ping every 20 s, 40 s to answer (uvicorn's default is 20 s): longer than a
# stream's own bound on a slow screen (SLOW_SCREEN_S, 10 s, after the buffers filled).
PING_INTERVAL_S = 20
PING_TIMEOUT_S = 40


# The kernel's send buffer of a WebSocket connection. Linux grows it up to 4 MiB by default, which
# hid a screen that stopped reading for minutes (and held that much per screen); 128 KiB
# (the kernel doubles it) still carries ~2.5 MB/s at a 100 ms round trip, several times what a
# city-wide screen receives.
SEND_BUFFER_BYTES = 128 * 1024


class BoundedCloseWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:  # not a TCP socket (a test transport): nothing to bound
                pass

    async def send(self, message: Any) -> None:
        if (message["type"] == "websocket.close" and self.handshake_complete and not self.close_sent
                and not self.disconnected and self.initial_response is None and not self.writable.is_set()
                and not self.transport.is_closing()):
            code = message.get("code", 1000)
            reason = message.get("reason", "") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            if self.read_paused:  # read the peer's close reply
                self.read_paused = False
                self.transport.resume_reading()
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_or_abort)
            return
        await super().send(message)

    def _close_or_abort(self) -> None:
        self.transport.close()  # flushes what is buffered first: the peer may still read it
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)


WS_OPTIONS = ("--ws", "config.ws:BoundedCloseWebSocketProtocol",
              "--ws-ping-interval", str(PING_INTERVAL_S), "--ws-ping-timeout", str(PING_TIMEOUT_S))
