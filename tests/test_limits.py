"""Limits (issue 14): prepared tile statements per connection are bounded and a request's layer
order is one shape; the real server refuses WebSocket frames above the limit itself, times out
connections whose request head never completes, and shuts down within a bound."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from accounts.jurisdiction import Jurisdiction
from config.http import LIMIT_OPTIONS, server_command
from config.limits import GRACEFUL_SHUTDOWN_S, WS_MAX_BYTES
from tests.live_server import free_port, session_database_url
from tests.realtime_support import world  # noqa: F401 (a fixture)
from tiles import registry, service
from tiles.loopdb import LoopDatabase, connect_like_django
from tiles.params import checked_layers, parse_layers
from tiles.sql import LayerQuery, TileQuery, tile_sql

ROOT = Path(__file__).resolve().parent.parent
BOUND = 8  # a small bound, so that a few dozen shapes go well past it
# A z14 tile far from Beijing (the Pacific): every statement is cheap, each shape a statement.
EMPTY_TILE = (14, 16000, 8000)


# --- prepared statements ----------------------------------------------------------------------


def test_layer_order_is_one_request_shape() -> None:
    assert parse_layers("vehicles,officers,cameras") == parse_layers("cameras,officers,vehicles")
    city = Jurisdiction("city")
    one = TileQuery(checked_layers("vehicles,officers", {}), *EMPTY_TILE, city)
    other = TileQuery(checked_layers("officers,vehicles", {}), *EMPTY_TILE, city)
    assert one.shape == other.shape and tile_sql(one)[0] == tile_sql(other)[0]
    assert service.base_key(one) == service.base_key(other)


def shapes() -> list[TileQuery]:
    """Distinct statements: every pair and triple of layers (a statement's text is its layers,
    their generalisation at the zoom and the filters it has; values are bound)."""
    city = Jurisdiction("city")
    combos = [list(combo) for size in (2, 3) for combo in itertools.combinations(registry.LAYERS, size)]
    queries = [TileQuery(tuple(LayerQuery(layer) for layer in combo), *EMPTY_TILE, city) for combo in combos]
    assert len({tile_sql(q)[0] for q in queries}) == len(queries) > 3 * BOUND
    return queries


COUNT_PREPARED = ("SELECT count(*)::text::bytea, coalesce(string_agg(name, ',' ORDER BY name), '')::bytea, %s::bytea"
                  " FROM pg_prepared_statements")


@pytest.mark.django_db
def test_a_loop_connection_keeps_at_most_its_bound_of_prepared_statements() -> None:
    queries = shapes()
    executor = ThreadPoolExecutor(max_workers=1)
    db = LoopDatabase(1, connect_like_django, executor, max_prepared=BOUND)

    async def scenario() -> None:
        for query in queries:  # one at a time: each a new shape
            await db.run(*tile_sql(query))
        # All at once (more new shapes in flight than the bound), with a failing statement
        # among them: its batch is aborted, and the deallocations in it are sent again.
        failing = db.run("SELECT (1 / %s::int)::text::bytea, ''::bytea, ''::bytea", [0])
        results = await asyncio.gather(failing, *(db.run(*tile_sql(q)) for q in reversed(queries)),
                                       return_exceptions=True)
        assert isinstance(results[0], Exception)
        assert all(isinstance(r, tuple) for r in results[1:]), [r for r in results if not isinstance(r, tuple)]
        (conn,) = db.connections
        count, names, _ = await db.run(COUNT_PREPARED, ["x"])  # on the same session: its statements
        assert int(count) <= BOUND
        assert set(names.decode().split(",")) == {n.decode() for n in conn.on_server}
        assert len(conn.prepared) <= BOUND

    try:
        asyncio.run(scenario())
    finally:
        db.close()
        executor.shutdown()


@pytest.mark.django_db
def test_a_pool_thread_connection_keeps_at_most_its_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """tiles.service's statements on the pool threads' psycopg connections (prepared_max)."""
    from django.db import connection

    monkeypatch.setattr(service, "MAX_PREPARED", BOUND)
    queries = shapes()

    def on_a_fresh_connection() -> int:
        try:
            # The pool may hand over a connection earlier tests prepared statements on (under the
            # real bound): start it empty, server and psycopg's cache alike.
            connection.ensure_connection()
            connection.connection.execute("DEALLOCATE ALL")
            connection.connection._prepared.clear()
            for query in queries:
                service.run_tile_statement(query)
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_prepared_statements")
                return int(cursor.fetchone()[0])
        finally:
            connection.close()

    counted: list[int] = []
    thread = threading.Thread(target=lambda: counted.append(on_a_fresh_connection()))
    thread.start()
    thread.join(timeout=120)
    assert counted and 0 < counted[0] <= BOUND


# --- the real server --------------------------------------------------------------------------


def start_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """The server as `make serve` runs it (one worker), polled until it answers."""
    port = free_port()
    process = subprocess.Popen(
        server_command(sys.executable, "127.0.0.1", port, "--log-level", "warning"), cwd=ROOT,
        env={**os.environ, "DATABASE_URL": session_database_url(), "PYTHONUNBUFFERED": "1", **(env or {})})
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the server exited while starting"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)  # polling interval, not synchronisation


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        process, port = start_server({"ONEMAP_HEADER_TIMEOUT_S": "1"})
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_makefile_serves_with_the_same_limits() -> None:
    makefile = (ROOT / "Makefile").read_text()
    server_lines = re.search(r"^SERVER = .*?(?=\n\n)", makefile, re.S | re.M)
    assert server_lines is not None
    words = server_lines.group().split()
    for option, value in zip(LIMIT_OPTIONS[::2], LIMIT_OPTIONS[1::2], strict=True):
        assert words[words.index(option) + 1] == value, option


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (the socket's timeout fails the test if it never does)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_an_incomplete_request_head_is_timed_out(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=20) as sock:
        sock.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"application/problem+json" in answer
    with socket.create_connection(("127.0.0.1", server), timeout=20) as sock:  # says nothing at all
        assert read_all(sock) == b""


def test_the_head_timeout_holds_for_the_next_request_on_a_kept_connection(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=20) as sock:
        sock.sendall(b"GET /ogc/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /ogc/ HTTP/1.1\r\nHo")
        answer = read_all(sock)
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 401 ") or first.startswith(b"HTTP/1.1 404 "), answer[:200]
    assert b"HTTP/1.1 408 " in rest


def test_websocket_frames_above_the_limit_are_refused_by_the_server(server: int, world: Any) -> None:  # noqa: F811
    device = world.officers["a1"].device_id
    url = f"ws://127.0.0.1:{server}/ws/field?token={world.device_tokens[device]}"
    with ws_connect(url, open_timeout=20, close_timeout=5, max_size=None) as app:
        assert '"hello"' in str(app.recv(timeout=20))
        ping = '{"type": "ping", "ref": "full"}'
        app.send(ping + " " * (WS_MAX_BYTES - len(ping)))  # exactly the limit: taken
        assert '"pong"' in str(app.recv(timeout=20))
        app.send(ping + " " * (WS_MAX_BYTES - len(ping) + 1))
        with pytest.raises(ConnectionClosed) as closed:
            app.recv(timeout=20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


def test_shutdown_is_bounded_with_requests_and_sockets_in_flight(django_db_blocker, world: Any) -> None:  # noqa: F811
    with django_db_blocker.unblock():
        process, port = start_server()
    device = world.officers["a1"].device_id
    try:
        stalled = socket.create_connection(("127.0.0.1", port), timeout=20)
        # A body that never comes: the ingest view waits for it.
        stalled.sendall(b"POST /api/positions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000\r\n\r\n[")
        with ws_connect(f"ws://127.0.0.1:{port}/ws/field?token={world.device_tokens[device]}", open_timeout=20) as app:
            assert '"hello"' in str(app.recv(timeout=20))
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=GRACEFUL_SHUTDOWN_S + 20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the server still ran {GRACEFUL_SHUTDOWN_S + 20} s after SIGTERM")
        stalled.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
