"""Large OGC pages: streamed in chunks, and limited in number at once per user (429) and per process
(503), with Retry-After, never a 500 (issue 14: 64 concurrent 10,000-camera pages emptied the
pool, gave 500s and took a worker from 215 to 1,440 MiB).

The requests are held open the way a slow client holds them: a heavy response that has not been
read to its end keeps its slot. In process that is a test-client response not yet consumed; over
HTTP, a socket with a small receive window that the test does not read. No sleeps anywhere."""

from __future__ import annotations

import gc
import http.client
import json
import socket
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import urlsplit

import pytest

from accounts.models import ApiToken
from config.env import PREFIX
from geo.ogc.limits import HEAVY
from tests.live_server import running_server
from tests.test_ogc import bearer, destroy_world, world  # noqa: F401  (fixture)

CAMERAS = "/ogc/collections/cameras/items"


def body_of(response) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(b"".join(response.streaming_content))


@pytest.fixture(autouse=True)
def no_slot_left_behind():  # type: ignore[no-untyped-def]
    assert HEAVY.in_use() == 0
    yield
    gc.collect()  # a response a test dropped unread frees its slot when collected
    assert HEAVY.in_use() == 0


def test_a_heavy_page_is_streamed_and_equals_the_light_pages(client, world, settings):  # noqa: F811
    headers = bearer(world.city)
    limit = settings.OGC_HEAVY_LIMIT + 1  # heavy: above the threshold, and more than two chunks
    response = client.get(CAMERAS, {"limit": limit}, **headers)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/geo+json"
    streamed = body_of(response)
    assert streamed["type"] == "FeatureCollection" and streamed["numberReturned"] == limit
    light = client.get(CAMERAS, {"limit": settings.OGC_HEAVY_LIMIT}, **headers).json()
    assert not client.get(CAMERAS, {"limit": 10}, **headers).streaming
    assert streamed["features"][:-1] == light["features"]
    assert streamed["numberMatched"] == light["numberMatched"]
    ids = [f["id"] for f in streamed["features"]]
    assert ids == sorted(set(ids))
    next_href = next(link["href"] for link in streamed["links"] if link["rel"] == "next")
    assert f"cursor={ids[-1]}" in next_href


def test_a_heavy_cursor_page_continues_where_the_last_ended(client, world, settings):  # noqa: F811
    headers = bearer(world.city)
    first = client.get(CAMERAS, {"limit": 20}, **headers).json()
    cursor = first["features"][9]["id"]
    streamed = body_of(client.get(CAMERAS, {"limit": settings.OGC_HEAVY_LIMIT + 1, "cursor": cursor}, **headers))
    assert [f["id"] for f in streamed["features"][:10]] == [f["id"] for f in first["features"][10:]]
    assert "numberMatched" not in streamed


def test_heavy_requests_are_limited_per_user_and_per_process(client, world, settings):  # noqa: F811
    settings.OGC_HEAVY_PER_USER, settings.OGC_HEAVY_PER_PROCESS = 2, 3
    heavy = {"limit": settings.OGC_HEAVY_LIMIT + 1, "district": "110198"}
    city, district, street = bearer(world.city), bearer(world.district), bearer(world.street)

    held = [client.get(CAMERAS, heavy, **city), client.get(CAMERAS, heavy, **city)]
    assert [r.status_code for r in held] == [200, 200] and HEAVY.in_use() == 2

    too_many = client.get(CAMERAS, heavy, **city)
    assert too_many.status_code == 429 and too_many["Retry-After"] == str(settings.OGC_HEAVY_RETRY_AFTER_S)
    assert too_many["Content-Type"] == "application/problem+json" and too_many.json()["status"] == 429

    held.append(client.get(CAMERAS, heavy, **district))  # another user: the process has room for one more
    assert held[-1].status_code == 200 and HEAVY.in_use() == 3
    busy = client.get(CAMERAS, heavy, **street)
    assert busy.status_code == 503 and busy["Retry-After"] == str(settings.OGC_HEAVY_RETRY_AFTER_S)
    assert busy.json()["title"] == "Service Unavailable"

    # Light requests never wait for a slot.
    assert client.get(CAMERAS, {"limit": 10}, **street).status_code == 200
    assert client.get(f"{CAMERAS}/1", **street).status_code in (200, 404)

    # A page read to its end frees its slot: the next heavy request goes through.
    assert body_of(held.pop(0))["numberReturned"] == 30
    assert HEAVY.in_use() == 2
    held.append(client.get(CAMERAS, heavy, **street))
    assert held[-1].status_code == 200
    # A response closed unread (a client gone) frees its slot too, and so does one dropped.
    held.pop(0).close()
    assert HEAVY.in_use() == 2
    held.clear()
    gc.collect()
    assert HEAVY.in_use() == 0


# -- over HTTP, through the real server (ASGI: the body is an async iterator) -------------------

def open_unread(base: str, path: str, token: str) -> tuple[socket.socket, bytes]:
    """A request whose response the test does not read: a small receive window, so the server's
    writes stop after a few KB and the page stays in progress. Returns the socket and the head."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock, head


def read_rest(sock: socket.socket) -> bytes:
    """The rest of a chunked body (the server closes nothing: read until the last chunk)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    reader = sock.makefile("rb")
    body = bytearray()
    while True:
        size = int(reader.readline().strip(), 16)
        if size == 0:
            reader.readline()
            return bytes(body)
        body += reader.read(size)
        reader.readline()


def get(base: str, path: str, token: str) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (our own local server)
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def tokens(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    from django.db import connection

    from tests.test_ogc import build_world

    # pytest-django sets the test database up only for a run that holds a database test: never
    # build (and destroy) this world in the development database.
    assert connection.settings_dict["NAME"] == connection.settings_dict["TEST"]["NAME"], "run with the db tests"
    with django_db_blocker.unblock():
        built = build_world()
        issued = [ApiToken.issue(user)[1] for user in (built.city, built.district, built.street)]
    try:
        yield issued
    finally:
        with django_db_blocker.unblock():
            destroy_world()


def test_the_server_streams_and_refuses_beyond_its_limit(tokens, django_db_blocker):  # type: ignore[no-untyped-def]
    city, district, street = tokens
    env = {f"{PREFIX}{name}": value for name, value in
           {"OGC_HEAVY_PER_PROCESS": "2", "OGC_HEAVY_PER_USER": "1", "OGC_HEAVY_RETRY_AFTER_S": "3"}.items()}
    heavy = f"{CAMERAS}?limit=10000"
    with django_db_blocker.unblock(), running_server(env) as base:
        first, head1 = open_unread(base, heavy, city)
        second, head2 = open_unread(base, heavy, district)
        try:
            assert head1.startswith(b"HTTP/1.1 200") and head2.startswith(b"HTTP/1.1 200")
            assert b"transfer-encoding: chunked" in head1.lower()
            status, headers, body = get(base, heavy, city)  # this user's one slot is taken
            assert status == 429 and headers["Retry-After"] == "3" and json.loads(body)["status"] == 429
            status, headers, body = get(base, heavy, street)  # the process's two slots are taken
            assert status == 503 and headers["Retry-After"] == "3"
            status, _, body = get(base, f"{CAMERAS}?limit=10", street)  # light: served at once
            assert status == 200 and json.loads(body)["numberReturned"] == 10
            page = json.loads(read_rest(first))
            assert page["numberReturned"] == 10000 and len(page["features"]) == 10000
            # The page read to its end freed its slot (before its last chunk was sent); the other
            # is still held, so the process has room for exactly one more at a time.
            conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=60)
            for token in (street, city):
                conn.request("GET", heavy, headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                assert response.status == 200 and json.loads(response.read())["numberReturned"] == 10000
            conn.close()
        finally:
            first.close()
            second.close()
