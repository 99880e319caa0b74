"""Tile statements run from the event loop, over libpq's non-blocking API in pipeline mode (used
by tiles.asgi).

Why the event loop: a miss handed to a thread pool cost more than the statement itself. Each hop
to a pool thread and back is ~40-90 us of CPU, and the event loop and the pool threads then take
the GIL from one another: on the 2-core bench machine, z14 tiles at concurrency 8 ran at ~700/s
through the pool and ~1,200/s with the same statement run on the loop.

Why pipeline mode: on a busy machine the costly part of a statement was no longer the SQL but the
hand-over. Each statement sent woke a PostgreSQL backend, which preempted the worker (~1.8
involuntary context switches per tile), and each answer woke the worker again; every switch also
costs the Python process its CPU caches. Here the statements of the requests that arrive in one
turn of the event loop are queued on one connection and sent in one write, with one Sync, so
PostgreSQL runs them back to back and the loop reads several answers per wake-up.

The protocol, as libpq's pipeline mode has it: the results of each statement end with a NULL
result; a Sync answers with one PIPELINE_SYNC result. Statements between two Syncs run in one
implicit transaction, so an error in one aborts the rest of its batch (PIPELINE_ABORTED): those
did not run, and are sent again once, in the next batch. A statement that fails, a broken
connection, or anything unexpected raises LoopDatabaseError, and the caller serves that tile
through the thread pool instead. A request cancelled meanwhile just leaves its answer unread.

Deliberately small: a few connections per worker process, each bound to the event loop that
opened it, with its own prepared statements (one per statement text, that is per request shape,
as psycopg's prepare=True), text parameters typed by PostgreSQL as pgbench's are, binary results.

The prepared statements of a connection are bounded (MAX_PREPARED, least recently used first
out, closed on the server): a tile statement costs its backend ~265 KB, and request shapes
(layers, filters, jurisdiction, zoom) are many, so unbounded they grew two backends to ~600 MiB
each in 72 s. Only a statement whose PREPARE the server confirmed is closed, so a close never
names a statement that does not exist, and names are never reused."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq

from tiles.sql import Params

log = logging.getLogger(__name__)

# A connection is replaced after this long, as the pool threads' are (tiles.asgi).
KEEP_CONNECTION_S = 300
# Prepared tile statements kept per connection (this one's and the pool threads' psycopg
# connections, tiles.service): a map's working set is a few shapes per zoom level.
MAX_PREPARED = int(os.environ.get("ONEMAP_TILE_MAX_PREPARED", "64"))
# libpq 17 closes a prepared statement at the protocol level (no SQL to parse); before, DEALLOCATE.
CLOSE_AT_PROTOCOL_LEVEL = pq.version() >= 170000
PLACEHOLDER = re.compile(r"%s|%%")
Row = tuple[bytes, bytes, bytes]


class LoopDatabaseError(Exception):
    """The statement failed, or the connection broke (and was dropped)."""


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


@dataclass
class Pending:
    """What the connection waits for, in the order PostgreSQL answers: a PREPARE, a statement
    (with the future of its row), or a Sync."""

    kind: str  # "prepare" | "query" | "sync" | "deallocate"
    sql: str = ""
    params: list[bytes] = field(default_factory=list)
    future: asyncio.Future[Row] | None = None
    retried: bool = False
    error: str = ""  # set when its PREPARE failed: the statement fails with that error
    name: bytes = b""  # of the statement prepared or deallocated


class PipelinedConnection:
    def __init__(self, conn: psycopg.Connection, loop: asyncio.AbstractEventLoop,
                 max_prepared: int = MAX_PREPARED) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.loop = loop
        self.pgconn.nonblocking = 1
        self.pgconn.enter_pipeline_mode()
        self.fd = self.pgconn.socket
        # statement text -> name, least recently used first; on_server: the names whose PREPARE
        # the server confirmed (and that are not yet deallocated).
        self.prepared: OrderedDict[str, bytes] = OrderedDict()
        self.on_server: set[bytes] = set()
        self.max_prepared = max(1, max_prepared)
        self.names = itertools.count()
        self.pending: deque[Pending] = deque()
        self.results: list[pq.abc.PGresult] = []  # of the statement being read
        self.batch_open = False
        self.batches = 0  # Syncs sent: the number of batches (tests, and to see how much they group)
        self.writing = False
        self.closed = False
        self.opened = time.monotonic()
        loop.add_reader(self.fd, self.read)

    @property
    def old(self) -> bool:
        return time.monotonic() - self.opened >= KEEP_CONNECTION_S

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def submit(self, sql: str, params: list[bytes], retried: bool = False) -> asyncio.Future[Row]:
        future: asyncio.Future[Row] = self.loop.create_future()
        if self.closed:
            future.set_exception(LoopDatabaseError("the connection is closed"))
            return future
        try:
            name = self.prepared.get(sql)
            if name is None:
                name = f"onemap_tile_{next(self.names)}".encode()
                self.pgconn.send_prepare(name, numbered(sql))
                self.pending.append(Pending("prepare", sql, name=name))
                self.prepared[sql] = name
                self.trim()
            else:
                self.prepared.move_to_end(sql)
            self.pgconn.send_query_prepared(name, params, result_format=1)
        except psycopg.Error as error:
            self.fail(error)
            future.set_exception(LoopDatabaseError(str(error)))
            return future
        self.pending.append(Pending("query", sql, params, future, retried))
        self.open_batch()
        return future

    def open_batch(self) -> None:
        if not self.batch_open:  # the Sync (and the write) once this turn of the loop is done
            self.batch_open = True
            self.loop.call_soon(self.end_batch)

    def trim(self) -> None:
        """Deallocate the least recently used statements beyond max_prepared; only confirmed
        ones (a PREPARE still in flight may yet fail; trim runs again when it is confirmed).
        The deallocation follows every use of the statement already sent, in pipeline order."""
        excess = len(self.prepared) - self.max_prepared
        if excess <= 0:
            return
        for sql, name in list(self.prepared.items()):
            if excess <= 0:
                break
            if name in self.on_server:
                del self.prepared[sql]
                self.deallocate(name)
                excess -= 1

    def deallocate(self, name: bytes) -> None:
        if CLOSE_AT_PROTOCOL_LEVEL:
            self.pgconn.send_close_prepared(name)
        else:
            self.pgconn.send_query_params(b"DEALLOCATE " + name, None)
        self.pending.append(Pending("deallocate", name=name))
        self.open_batch()

    def end_batch(self) -> None:
        self.batch_open = False
        if self.closed:
            return
        try:
            self.pgconn.pipeline_sync()  # sends what it can without blocking
            self.pending.append(Pending("sync"))
            self.batches += 1
            self.flush()
        except psycopg.Error as error:
            self.fail(error)

    def flush(self) -> None:
        unsent = self.pgconn.flush()
        if unsent and not self.writing:
            self.writing = True
            self.loop.add_writer(self.fd, self.write)
        elif not unsent and self.writing:
            self.writing = False
            self.loop.remove_writer(self.fd)

    def write(self) -> None:
        try:
            self.flush()
        except psycopg.Error as error:
            self.fail(error)

    def read(self) -> None:
        pgconn = self.pgconn
        try:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    if not self.results:
                        break  # nothing more has arrived
                    self.finish(self.results)
                    self.results = []
                elif result.status == pq.ExecStatus.PIPELINE_SYNC:
                    if not self.pending or self.pending.popleft().kind != "sync":
                        raise LoopDatabaseError("a Sync answered out of turn")
                else:
                    self.results.append(result)
        except (psycopg.Error, LoopDatabaseError) as error:
            self.fail(error)
        if self.old and not self.pending:
            self.close()

    def finish(self, results: list[pq.abc.PGresult]) -> None:
        """The results of the oldest statement sent."""
        if not self.pending or self.pending[0].kind == "sync":
            raise LoopDatabaseError("a result came for no statement")
        item = self.pending.popleft()
        result = results[-1]
        status = result.status
        waiting = item.future is not None and not item.future.done()  # (done: the request was cancelled)
        if status == pq.ExecStatus.TUPLES_OK and len(results) == 1:  # a tile: first, with no error to read
            if waiting:
                assert item.future is not None  # for mypy: waiting says so
                row = tuple(result.get_value(0, c) for c in range(3)) if result.ntuples == 1 else (None,)
                if None in row:
                    item.future.set_exception(LoopDatabaseError("the tile statement returned no row"))
                else:
                    item.future.set_result(row)  # type: ignore[arg-type]
            return
        if status == pq.ExecStatus.COMMAND_OK and item.kind == "prepare":
            self.on_server.add(item.name)
            self.trim()  # (if more than max_prepared were in flight at once)
            return
        if status == pq.ExecStatus.COMMAND_OK and item.kind == "deallocate":
            self.on_server.discard(item.name)
            return
        error = result.error_message.decode(errors="replace").strip() or pq.ExecStatus(status).name
        severity = result.error_field(pq.DiagnosticField.SEVERITY_NONLOCALIZED)
        if item.kind == "deallocate":
            if status == pq.ExecStatus.PIPELINE_ABORTED and item.name in self.on_server:
                self.deallocate(item.name)  # an earlier statement of its batch failed: it never ran
            else:
                log.warning("tile statement %s could not be deallocated: %s", item.name.decode(), error)
                self.on_server.discard(item.name)
        elif item.kind == "prepare":
            if self.prepared.get(item.sql) == item.name:
                del self.prepared[item.sql]
            # Its statement follows, aborted: it fails for this error, or, if the PREPARE was only
            # aborted by an earlier failure in the batch, it is sent again (and prepared again).
            if status != pq.ExecStatus.PIPELINE_ABORTED and self.pending and self.pending[0].kind == "query":
                self.pending[0].error = error
        elif waiting:
            assert item.future is not None
            if status == pq.ExecStatus.PIPELINE_ABORTED and not item.error and not item.retried:
                # An earlier statement of the batch failed; this one never ran: send it again.
                retry = self.submit(item.sql, item.params, retried=True)
                retry.add_done_callback(functools.partial(relay, target=item.future))
            else:
                item.future.set_exception(LoopDatabaseError(item.error or error))
        if severity in (b"FATAL", b"PANIC"):  # the server is closing this connection
            raise LoopDatabaseError(error)

    def fail(self, error: BaseException) -> None:
        """The connection is unusable: every statement still waiting fails, and it is closed."""
        pending, self.pending = self.pending, deque()
        for item in pending:
            if item.future is not None and not item.future.done():
                item.future.set_exception(LoopDatabaseError(f"connection lost: {error}"))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.loop.is_closed():
            self.loop.remove_reader(self.fd)
            if self.writing:
                self.loop.remove_writer(self.fd)
        for item in self.pending:
            if item.future is not None and not item.future.done():
                item.future.set_exception(LoopDatabaseError("the connection was closed"))
        self.pending.clear()
        self.conn.close()


def relay(done: asyncio.Future[Row], *, target: asyncio.Future[Row]) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
    elif (error := done.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(done.result())


class LoopDatabase:
    """Up to `size` pipelined connections of one worker process; a statement goes to the one with
    the fewest statements in flight, and a second connection is opened only when all are busy."""

    def __init__(self, size: int, connect: Callable[[], psycopg.Connection], executor: Executor,
                 max_prepared: int = MAX_PREPARED) -> None:
        self.size = size
        self.max_prepared = max_prepared
        self.connect = connect  # blocking: runs in `executor`
        self.executor = executor
        self.connections: list[PipelinedConnection] = []
        self.opening: asyncio.Task[PipelinedConnection] | None = None

    async def run(self, sql: str, params: Params) -> Row:
        conn = await self.connection()
        return await conn.submit(sql, [text_param(p) for p in params])

    async def connection(self) -> PipelinedConnection:
        loop = asyncio.get_running_loop()
        if len(self.connections) == 1 and self.opening is None:  # the common case, decided at once
            conn = self.connections[0]
            if conn.loop is loop and not conn.closed and (self.size == 1 or not conn.pending) and not conn.old:
                return conn
        usable = []
        for conn in list(self.connections):
            if conn.closed or conn.loop is not loop:
                self.connections.remove(conn)
                conn.close()
            elif not conn.old:
                usable.append(conn)
            elif not conn.pending:
                self.connections.remove(conn)
                conn.close()
            # else: an old connection with statements in flight takes no new ones (read() closes it)
        best = min(usable, key=lambda c: c.in_flight, default=None)
        if self.opening is not None and self.opening.get_loop() is not loop:
            self.opening = None  # left over from an event loop that is gone (tests)
        if self.opening is not None:  # one connection opens at a time; meanwhile use what there is
            return best if best is not None else await asyncio.shield(self.opening)
        if best is not None and (best.in_flight == 0 or len(usable) >= self.size):
            return best
        self.opening = loop.create_task(self.open(loop))
        # Shielded: a request cancelled meanwhile must not cancel the connection the others wait for.
        return await asyncio.shield(self.opening)

    async def open(self, loop: asyncio.AbstractEventLoop) -> PipelinedConnection:
        try:
            raw = await loop.run_in_executor(self.executor, self.connect)
            conn = PipelinedConnection(raw, loop, self.max_prepared)
            self.connections.append(conn)
            return conn
        finally:
            self.opening = None

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.connections.clear()


def connect_like_django() -> psycopg.Connection:
    """A connection with Django's parameters for the default database, in autocommit."""
    from django.db import DEFAULT_DB_ALIAS, connections

    params: dict[str, Any] = dict(connections[DEFAULT_DB_ALIAS].get_connection_params())
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.Connection.connect(autocommit=True, **params)
