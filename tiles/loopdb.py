"""Tile statements run from the event loop, over libpq's non-blocking API (used by tiles.asgi).

Why: a miss handed to a thread pool cost more than the statement itself. Each hop to a pool
thread and back is ~40-90 us of CPU, and the event loop and the pool threads then take the GIL
from one another (several context switches per tile): on the 2-core bench machine, z14 tiles at
concurrency 8 ran at ~700/s through the pool and ~1,200/s with the same statement run on the loop.
Here the loop sends the statement and waits for the socket like any other I/O, so no thread is
involved and a slow tile does not hold up the other requests of the worker.

Deliberately small: a few connections per worker process, each with its own prepared statements
(one per statement text, that is per request shape, as psycopg's prepare=True), text parameters
typed by PostgreSQL as pgbench's are, binary results. Anything unusual goes back to the caller
as an exception, and the caller serves that tile through the thread pool instead."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import psycopg
from psycopg import pq

from tiles.sql import Params

# A connection is replaced after this long, as the pool threads' are (tiles.asgi).
KEEP_CONNECTION_S = 300
PLACEHOLDER = re.compile(r"%s|%%")


class LoopDatabaseError(Exception):
    """The statement failed or the connection broke; the connection has been dropped."""


def numbered(sql: str) -> bytes:
    """psycopg's %s placeholders as PostgreSQL's $1, $2, ... (and %% as %)."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    return PLACEHOLDER.sub(number, sql).encode()


def text_param(value: object) -> bytes:
    """A parameter in PostgreSQL's text form; its type comes from the statement (as in pgbench)."""
    if isinstance(value, list):  # a filter's value list, compared with `= ANY(...)`
        items = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
        return ("{" + ",".join(items) + "}").encode()
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


class LoopConnection:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.pgconn.nonblocking = 1
        self.prepared: dict[str, bytes] = {}
        self.opened = time.monotonic()

    async def wait(self, writing: bool = False) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self.pgconn.socket
        add: Callable[..., None] = loop.add_writer if writing else loop.add_reader
        remove = loop.remove_writer if writing else loop.remove_reader

        def wake() -> None:
            remove(fd)
            if not ready.done():
                ready.set_result(None)

        # Registered per wait (keeping the socket registered for the connection's life measured
        # no cheaper, and this leaves nothing behind when a connection or a loop goes away).
        add(fd, wake)
        try:
            await ready
        finally:
            remove(fd)

    def close(self) -> None:
        self.conn.close()

    async def results(self) -> list[pq.abc.PGresult]:
        pgconn = self.pgconn
        while pgconn.flush() == 1:
            await self.wait(writing=True)
        results: list[pq.abc.PGresult] = []
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    return results
                results.append(result)
            await self.wait()

    async def one(self, expected: pq.ExecStatus) -> pq.abc.PGresult:
        results = await self.results()
        if len(results) != 1 or results[0].status != expected:
            message = results[-1].error_message.decode(errors="replace") if results else "no result"
            raise LoopDatabaseError(message)
        return results[0]

    async def run(self, sql: str, params: Params) -> tuple[bytes, bytes, bytes]:
        name = self.prepared.get(sql)
        if name is None:
            name = f"onemap_tile_{len(self.prepared)}".encode()
            self.pgconn.send_prepare(name, numbered(sql))
            await self.one(pq.ExecStatus.COMMAND_OK)
            self.prepared[sql] = name
        self.pgconn.send_query_prepared(name, [text_param(p) for p in params], result_format=1)
        result = await self.one(pq.ExecStatus.TUPLES_OK)
        values = [result.get_value(0, column) for column in range(3)]
        if result.ntuples != 1 or any(v is None for v in values):
            raise LoopDatabaseError("the tile statement returned no row")
        return values[0], values[1], values[2]  # type: ignore[return-value]


class LoopDatabase:
    """Up to `size` connections of one worker process; a request waits for a free one."""

    def __init__(self, size: int, connect: Callable[[], psycopg.Connection], executor: Executor) -> None:
        self.size = size
        self.connect = connect  # blocking: runs in `executor`
        self.executor = executor
        self.idle: list[LoopConnection] = []
        self.count = 0
        self.waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> LoopConnection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if time.monotonic() - conn.opened < KEEP_CONNECTION_S and conn.pgconn.status == pq.ConnStatus.OK:
                    return conn
                self.drop(conn)
            if self.count < self.size:
                self.count += 1
                try:
                    raw = await asyncio.get_running_loop().run_in_executor(self.executor, self.connect)
                except BaseException:
                    self.count -= 1
                    self.wake_one()
                    raise
                return LoopConnection(raw)
            ready = asyncio.get_running_loop().create_future()
            self.waiting.append(ready)
            await ready

    def wake_one(self) -> None:
        while self.waiting:
            ready = self.waiting.popleft()
            if not ready.done():
                ready.set_result(None)
                return

    def drop(self, conn: LoopConnection) -> None:
        self.count -= 1
        conn.close()

    async def run(self, sql: str, params: Params) -> tuple[bytes, bytes, bytes]:
        conn = await self.acquire()
        try:
            row = await conn.run(sql, params)
        except BaseException:
            # A failed statement, a broken socket or a cancelled request (whose result would
            # still be on the wire): the connection's state is unknown, so it goes.
            self.drop(conn)
            self.wake_one()
            raise
        self.idle.append(conn)
        self.wake_one()
        return row

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.count -= len(self.idle)
        self.idle.clear()


def connect_like_django() -> psycopg.Connection:
    """A connection with Django's parameters for the default database, in autocommit."""
    from django.db import DEFAULT_DB_ALIAS, connections

    params: dict[str, Any] = dict(connections[DEFAULT_DB_ALIAS].get_connection_params())
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.Connection.connect(autocommit=True, **params)
