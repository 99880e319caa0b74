"""The HTTP protocol OneMap's uvicorn runs: uvicorn's httptools protocol, with the writes of one
turn of the event loop sent as one write.

    uvicorn config.asgi:application --http config.http:CoalescingHttpToolsProtocol

Why: uvicorn writes a response's status line and headers, then its body, in two writes: two
system calls, two TCP segments, and often two wake-ups of the client. A tile, a JSON answer or an
ingest acknowledgement is one small body. Sent at once, cold z14 tiles went from 1,760-1,980 to
2,130-2,300 a second in three A/B pairs on the 2-core bench machine (bench/tiles.py), with less
CPU in the server, in PostgreSQL and in the client.

The writes are held until the end of the current turn of the event loop (loop.call_soon), not
for a timer, so no answer waits; 64 KB and more go out at once. Closing (and end-of-file, and an upgrade) sends what is held
first; aborting drops it, as a transport's abort does. A WebSocket upgrade hands the real
transport to the WebSocket protocol, which writes frames as it pleases."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Held writes go out at once from this size on (a tile is a few KB; a page of GeoJSON may be MBs).
FLUSH_AT_BYTES = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport's writes, joined per turn of the event loop; everything else is the transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self.loop = loop
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.flush_scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self.held.append(bytes(data))
        self.held_bytes += len(data)
        if self.held_bytes >= FLUSH_AT_BYTES:
            # A large body gains nothing from joining, and the transport's flow control (uvicorn
            # awaits its drain between body messages) must see it now.
            self.flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.held:
            data = self.held[0] if len(self.held) == 1 else b"".join(self.held)
            self.held.clear()
            self.held_bytes = 0
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def abort(self) -> None:
        self.held.clear()
        self.held_bytes = 0
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + self.held_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)

    def handle_websocket_upgrade(self) -> None:
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()
            self.transport = self.transport.transport
        super().handle_websocket_upgrade()


PROTOCOL = "config.http:CoalescingHttpToolsProtocol"


def server_command(python: str, host: str, port: int, *options: str) -> list[str]:
    """OneMap's server command line, as tests and benchmarks start it (the Makefile's `serve`
    spells out the same)."""
    return [python, "-m", "uvicorn", "config.asgi:application", "--http", PROTOCOL, "--host", host,
            "--port", str(port), "--no-access-log", *options]
