"""config.http: the server's HTTP protocol sends a response's head and body in one write, and
otherwise behaves as a transport does (close sends what is held, abort drops it)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from config.http import FLUSH_AT_BYTES, CoalescingTransport
from tests.live_server import running_server


class Received(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None


async def transport_pair() -> tuple[CoalescingTransport, socket.socket]:
    """A real socket transport on one end (wrapped), and the plain socket at the other end."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(Received, ours)
    theirs.setblocking(False)
    return CoalescingTransport(transport, loop), theirs  # type: ignore[arg-type]


async def read_some(sock: socket.socket) -> bytes:
    return await asyncio.get_running_loop().sock_recv(sock, 65536)


def test_writes_of_one_turn_go_out_as_one() -> None:
    async def scenario() -> None:
        transport, peer = await transport_pair()
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        transport.write(b"body")
        assert transport.get_write_buffer_size() == 42  # held, nothing sent yet in this turn
        assert await read_some(peer) == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"
        transport.write(b"later")
        transport.close()  # sends what is held before closing
        assert await read_some(peer) == b"later"
        assert await read_some(peer) == b""  # closed
        peer.close()

    asyncio.run(scenario())


def test_a_large_write_goes_out_at_once() -> None:
    """Joining gains nothing for a large body, and flow control must see it in the same turn."""
    async def scenario() -> None:
        transport, peer = await transport_pair()
        transport.write(b"head")
        transport.write(bytes(FLUSH_AT_BYTES))
        assert transport.get_write_buffer_size() < FLUSH_AT_BYTES + 4  # handed to the socket already
        received = b""
        while len(received) < FLUSH_AT_BYTES + 4:
            received += await read_some(peer)
        assert received[:4] == b"head" and len(received) == FLUSH_AT_BYTES + 4
        transport.close()
        peer.close()

    asyncio.run(scenario())


def test_abort_drops_what_is_held() -> None:
    async def scenario() -> None:
        transport, peer = await transport_pair()
        transport.write(b"never sent")
        transport.abort()
        assert await read_some(peer) == b""
        assert transport.is_closing()
        peer.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock(), running_server() as base:
        yield base


def test_the_server_sends_head_and_body_in_one_segment(server) -> None:  # type: ignore[no-untyped-def]
    """An API answer (here a 401 problem) arrives whole in the first read: one write, not two."""
    address = urlsplit(server)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"GET /api/map/districts.geojson HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = sock.recv(65536)
    head, _, body = first.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert head.startswith(b"HTTP/1.1 401") and len(body) == length > 0
    assert json.loads(body)["status"] == 401


def test_the_composition_root_registers_the_tile_fast_path_as_a_direct_route() -> None:
    from config import asgi, http

    assert asgi.tile_fast_path in [getattr(route, "route", route) for route in http.DIRECT_ROUTES]  # measured (config.observe)


@pytest.mark.django_db
def test_a_signed_tile_url_is_answered_below_asgi_as_the_view_answers_it(server, client) -> None:  # type: ignore[no-untyped-def]
    """The real server (config.http's direct route to tiles.asgi) and the Django view give the same
    tile, byte for byte, with the same ETag; HEAD gives its headers and no body."""
    import urllib.request

    from tests.test_tiles_http import Z14, fill, template
    from tests.tiles_support import login_as

    login_as(client, "commander")
    url = fill(template(client, "cameras,hotspots"), *Z14)
    expected = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert expected.status_code == 200 and expected["Content-Encoding"] == "gzip"
    got = urllib.request.urlopen(urllib.request.Request(server + url, headers={"Accept-Encoding": "gzip"}))  # noqa: S310
    assert got.read() == expected.content and got.headers["ETag"] == expected["ETag"]
    head = urllib.request.urlopen(urllib.request.Request(server + url, method="HEAD",  # noqa: S310
                                                         headers={"Accept-Encoding": "gzip"}))
    assert head.read() == b"" and int(head.headers["Content-Length"]) == len(expected.content)
