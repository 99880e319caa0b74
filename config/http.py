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
transport to the WebSocket protocol, which writes frames as it pleases.

Direct routes: a request a registered route claims (the signed tile URLs of tiles.asgi; see
config/asgi.py) is answered by the protocol itself, below ASGI. Its answer is the same bytes the
route gives through ASGI, but without uvicorn's per-request machinery (the ASGI app stack, the
send() messages and their checks, an asyncio.Event per request): about a sixth of the server's
CPU per cold z14 tile on the bench machine. Everything else (keep-alive, pipelined requests
queued in order, shutdown, the keep-alive timeout, default headers, the access log, write flow
control) goes through uvicorn's own code paths, since a DirectCycle stands where uvicorn's
RequestResponseCycle would.

Header timeout: a connection must send a complete request head within HEADER_TIMEOUT_S of
connecting, or of the first byte of its next request. uvicorn has no such limit: its keep-alive
timer is cancelled by the first byte received, so a client that sent half a header line held the
connection (a file descriptor, buffers, a slot under --limit-concurrency) for ever. A connection
that sent part of a request head is answered 408 and closed; one that sent nothing is closed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from config.headers import RAW_HEADERS
from config.limits import GRACEFUL_SHUTDOWN_S, HEADER_TIMEOUT_S, WS_MAX_BYTES
from config.ws import WS_OPTIONS

log = logging.getLogger(__name__)

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


class DirectRoute(Protocol):
    """Requests answered below ASGI. claim() decides from the request line alone (cheaply: it
    runs for every request); respond() gives status, lower-case headers with content-length, and
    the body (empty for HEAD)."""

    def claim(self, method: str, path: str, query_string: bytes) -> Any | None: ...

    async def respond(self, claimed: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, list[tuple[bytes, bytes]], bytes]: ...


# Filled by the composition root (config/asgi.py) when the application is loaded in a worker.
DIRECT_ROUTES: list[DirectRoute] = []


class NoEvent:
    """The protocol sets its cycle's message_event when body bytes arrive or the client goes:
    a direct route reads no body, so nothing waits on it."""

    def set(self) -> None:
        pass


NO_EVENT = NoEvent()
INTERNAL_ERROR = b"Internal Server Error"


class DirectCycle:
    """A claimed request in the place of uvicorn's RequestResponseCycle: the attributes the
    protocol reads and sets (body, more_body, message_event, keep_alive, disconnected,
    response_complete), and run_asgi(), by which the protocol starts a cycle, now or after the
    pipelined requests before it."""

    def __init__(self, protocol: CoalescingHttpToolsProtocol, route: DirectRoute, claimed: Any, keep_alive: bool) -> None:
        self.protocol = protocol
        self.route = route
        self.claimed = claimed
        self.headers = protocol.headers
        self.scope = protocol.scope  # for the access log only
        self.keep_alive = keep_alive
        self.body = bytearray()
        self.more_body = True
        self.message_event = NO_EVENT
        self.disconnected = False
        self.response_complete = False

    async def run_asgi(self, app: Any) -> None:
        protocol = self.protocol
        try:
            status, headers, body = await self.route.respond(self.claimed, self.headers)
        except Exception:  # as uvicorn answers an application's exception
            log.exception("Exception in direct route %s", type(self.route).__name__)
            status, headers, body = 500, [(b"content-type", b"text/plain; charset=utf-8"), *RAW_HEADERS,
                                          (b"content-length", str(len(INTERNAL_ERROR)).encode())], INTERNAL_ERROR
            self.keep_alive = False
        if self.disconnected:
            return
        if protocol.flow.write_paused:
            await protocol.flow.drain()
        head = [STATUS_LINE[status]]
        for name, value in (*protocol.server_state.default_headers, *headers):
            head += [name, b": ", value, b"\r\n"]
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", body]
        protocol.transport.write(b"".join(head))
        if protocol.access_log:
            protocol.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(self.scope), self.scope["method"],
                                        get_path_with_query_string(self.scope), self.scope["http_version"], status)
        self.response_complete = True
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()


# Seconds; ONEMAP_HEADER_TIMEOUT_S overrides it (tests use a short one).
HEADER_TIMEOUT = float(os.environ.get("ONEMAP_HEADER_TIMEOUT_S", HEADER_TIMEOUT_S))
_TIMEOUT_BODY = json.dumps({"type": "about:blank", "title": "Request Timeout", "status": 408,
                            "detail": f"the request head did not arrive within {HEADER_TIMEOUT:g} s"}).encode()
REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
                   b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_BODY)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    header_timer: asyncio.TimerHandle | None = None
    # Since when the connection owes a request head (connecting, or the first byte of a request),
    # None while none is owed; head_started: bytes of that head arrived. Per request these are two
    # attribute writes: one timer per connection checks them (a timer armed and cancelled per
    # request cost ~1-3 us, on the tile fast path's ~300 us).
    head_since: float | None = None
    head_started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)
        self.head_since = self.loop.time()
        self.header_timer = self.loop.call_later(HEADER_TIMEOUT, self.check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head_checks()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_since = self.loop.time()
        self.head_started = True

    def stop_head_checks(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def check_head(self) -> None:
        """A head owed for HEADER_TIMEOUT: 408 if part of it came, else just close. A head begun
        since the last check is checked again when its time is up (at most twice the timeout)."""
        self.header_timer = None
        if self.transport.is_closing():
            return
        waited = self.loop.time() - self.head_since if self.head_since is not None else 0.0
        in_cycle = self.cycle is not None and not self.cycle.response_complete
        if self.head_since is None or waited < HEADER_TIMEOUT or in_cycle:
            # Nothing owed (idle keep-alive is uvicorn's timeout), not yet due, or a pipelined
            # head waiting while reading is paused for the request before it (the server is slow).
            self.header_timer = self.loop.call_later(max(HEADER_TIMEOUT - waited, 0.05) if not in_cycle
                                                     else HEADER_TIMEOUT, self.check_head)
            return
        if self.head_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def on_headers_complete(self) -> None:
        self.head_since = None
        self.head_started = False
        cycle = self.direct_cycle() if DIRECT_ROUTES else None
        if cycle is None:
            super().on_headers_complete()
            return
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]  # the attributes the protocol uses
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, None)  # type: ignore[arg-type]
        else:  # a pipelined request: after the ones before it, as uvicorn queues its own
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, None))  # type: ignore[arg-type]

    def direct_cycle(self) -> DirectCycle | None:
        """A DirectCycle if a route claims the request (never an upgrade, nor over the
        concurrency limit, which uvicorn answers)."""
        parser = self.parser
        if parser.should_upgrade() or self.limit_concurrency is not None:
            return None
        method = parser.get_method().decode("ascii")
        url = httptools.parse_url(self.url)
        path = url.path.decode("latin-1")
        if "%" in path or self.root_path:  # uvicorn unquotes and prefixes these: its own path
            return None
        for route in DIRECT_ROUTES:
            claimed = route.claim(method, path, url.query or b"")
            if claimed is not None:
                http_version = parser.get_http_version()
                self.scope["method"] = method
                self.scope["http_version"] = http_version
                self.scope["path"] = path
                self.scope["query_string"] = url.query or b""
                return DirectCycle(self, route, claimed, http_version != "1.0" and parser.should_keep_alive())
        return None

    def handle_websocket_upgrade(self) -> None:
        self.stop_head_checks()
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()
            self.transport = self.transport.transport
        super().handle_websocket_upgrade()


PROTOCOL = "config.http:CoalescingHttpToolsProtocol"


# The server's own limits (config/limits.py): WebSocket frames refused above the application's
# limit as they arrive, and a bounded graceful shutdown.
LIMIT_OPTIONS = ("--ws-max-size", str(WS_MAX_BYTES), "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S))


def server_command(python: str, host: str, port: int, *options: str) -> list[str]:
    """OneMap's server command line, as tests and benchmarks start it (the Makefile's `serve`
    spells out the same; tests/test_limits.py checks that it does)."""
    return [python, "-m", "uvicorn", "config.asgi:application", "--http", PROTOCOL, *WS_OPTIONS, "--host", host,
            "--port", str(port), "--no-access-log", *LIMIT_OPTIONS, *options]
