"""config.http's direct routes: a request a route claims is answered by the protocol below ASGI,
and the connection behaves as uvicorn's own cycle would (keep-alive, pipelined requests answered
in order, Connection: close, HTTP/1.0, HEAD, an exception answered 500). An in-process uvicorn
with OneMap's protocol on a real socket, a route and an ASGI app of the test's own."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvicorn

from config import http
from config.http import CoalescingHttpToolsProtocol


class Route:
    """Claims /direct/...; /direct/fail raises; /direct/gated waits for the test's gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.last_claimed = asyncio.Event()  # set when /direct/last has been parsed and claimed

    def claim(self, method: str, path: str, query_string: bytes) -> tuple[str, str, bytes] | None:
        if path == "/direct/last":
            self.last_claimed.set()
        return (method, path, query_string) if path.startswith("/direct/") else None

    async def respond(self, claimed: tuple[str, str, bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, list, bytes]:
        method, path, query = claimed
        if path == "/direct/fail":
            raise RuntimeError("a bug in the route")
        if path == "/direct/gated":
            await self.gate.wait()
        agent = dict(headers).get(b"user-agent", b"")
        body = b"direct " + path.encode() + b"?" + query + b" " + agent
        return 200, [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())], \
            b"" if method == "HEAD" else body


async def asgi_app(scope: dict, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b"asgi " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


Scenario = Callable[[Route, int], Coroutine[Any, Any, None]]


def run(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    route = Route()
    monkeypatch.setattr(http, "DIRECT_ROUTES", [route])

    async def main() -> None:
        # Our own listening socket: connections queue in its backlog until uvicorn accepts them,
        # so the scenario needs no wait for the server to start.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        config = uvicorn.Config(asgi_app, http=CoalescingHttpToolsProtocol, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await scenario(route, sock.getsockname()[1])
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def response(reader: asyncio.StreamReader, head_request: bool = False) -> tuple[int, dict[bytes, bytes], bytes, bytes]:
    """Status, headers, body (by content-length; none for HEAD) and the raw head of the next response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:] if line)
    body = b"" if head_request else await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return int(lines[0].split()[1]), headers, body, head


def request(path: str, method: str = "GET", version: str = "1.1", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: t\r\nUser-Agent: probe\r\n{extra}\r\n".encode()


def test_claimed_and_unclaimed_requests_share_a_keep_alive_connection(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def scenario(route: Route, port: int) -> None:
        reader, writer = await connect(port)
        for path, expected in [("/direct/a?x=1", b"direct /direct/a?x=1 probe"), ("/page", b"asgi /page"),
                               ("/direct/b", b"direct /direct/b? probe")]:
            writer.write(request(path))
            status, headers, body, _ = await response(reader)
            assert (status, body) == (200, expected)
            assert b"date" in headers and b"connection" not in headers  # uvicorn's defaults, kept open
        writer.write(request("/direct/c", method="HEAD") + request("/page"))
        status, headers, _, _ = await response(reader, head_request=True)
        assert status == 200 and int(headers[b"content-length"]) == len(b"direct /direct/c? probe")
        assert (await response(reader))[2] == b"asgi /page"  # no body bytes were sent for the HEAD
        writer.close()

    run(scenario, monkeypatch)


def test_pipelined_requests_are_answered_in_order(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A claimed request still waiting holds back the ASGI one behind it, and the other way round."""
    async def scenario(route: Route, port: int) -> None:
        reader, writer = await connect(port)
        writer.write(request("/direct/gated") + request("/after") + request("/direct/last"))
        await route.last_claimed.wait()  # all three parsed: the two behind the gated one are queued
        route.gate.set()
        bodies = [(await response(reader))[2] for _ in range(3)]
        assert bodies == [b"direct /direct/gated? probe", b"asgi /after", b"direct /direct/last? probe"]
        writer.close()

    run(scenario, monkeypatch)


def test_connection_close_and_http_1_0_close_after_the_answer(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def scenario(route: Route, port: int) -> None:
        for raw in (request("/direct/a", extra="Connection: close\r\n"), request("/direct/a", version="1.0")):
            reader, writer = await connect(port)
            writer.write(raw)
            status, headers, body, _ = await response(reader)
            assert status == 200 and body.startswith(b"direct /direct/a") and headers[b"connection"] == b"close"
            assert await reader.read() == b""  # the server closed the connection
            writer.close()

    run(scenario, monkeypatch)


def test_an_exception_in_a_route_is_a_500_and_a_closed_connection(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    async def scenario(route: Route, port: int) -> None:
        reader, writer = await connect(port)
        writer.write(request("/direct/fail"))
        status, headers, body, _ = await response(reader)
        assert (status, body, headers[b"connection"]) == (500, b"Internal Server Error", b"close")
        assert await reader.read() == b""
        writer.close()

    with caplog.at_level(logging.ERROR, logger="config.http"):
        run(scenario, monkeypatch)
    assert "a bug in the route" in caplog.text


def test_percent_encoded_paths_go_through_asgi(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """uvicorn unquotes such paths; the route sees only plain ones, so it never sees them raw."""
    async def scenario(route: Route, port: int) -> None:
        reader, writer = await connect(port)
        writer.write(request("/direct/%61"))
        assert (await response(reader))[2] == b"asgi /direct/a"
        writer.close()

    run(scenario, monkeypatch)
