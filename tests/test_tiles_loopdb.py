"""tiles.loopdb against a real PostgreSQL: statements pipelined on one connection per event loop,
batched per turn of the loop, with errors, a lost connection and cancelled requests kept to the
statement they belong to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tiles import loopdb
from tiles.loopdb import LoopDatabase, LoopDatabaseError, connect_like_django

# One row of three non-null bytea values, as a tile statement returns; 100 / n fails for n = 0.
DIVIDE = "SELECT (100 / %s::int)::text::bytea, 'versions'::bytea, 'built'::bytea"


def run_closing(db: LoopDatabase, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(scenario())
    finally:
        db.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.shutdown()


@pytest.mark.django_db
def test_statements_of_one_turn_of_the_loop_go_in_one_batch(pool) -> None:  # type: ignore[no-untyped-def]
    db = LoopDatabase(1, connect_like_django, pool)

    async def scenario() -> None:
        rows = await asyncio.gather(*(db.run(DIVIDE, [n]) for n in range(1, 21)))
        assert [row[0] for row in rows] == [str(100 // n).encode() for n in range(1, 21)]
        assert rows[0][1:] == (b"versions", b"built")
        (conn,) = db.connections
        # The 20 requests waited for the connection together, then went out with one Sync.
        assert conn.batches == 1 and len(conn.prepared) == 1 and conn.in_flight == 0
        assert (await db.run(DIVIDE, [50]))[0] == b"2" and conn.batches == 2

    run_closing(db, scenario)


@pytest.mark.django_db
def test_a_failing_statement_fails_alone(pool) -> None:  # type: ignore[no-untyped-def]
    """The statements after it in its batch were aborted by PostgreSQL: they are sent again."""
    db = LoopDatabase(1, connect_like_django, pool)

    async def scenario() -> None:
        results = await asyncio.gather(db.run(DIVIDE, [2]), db.run(DIVIDE, [0]), db.run(DIVIDE, [4]),
                                       return_exceptions=True)
        assert results[0] == (b"50", b"versions", b"built")
        assert isinstance(results[1], LoopDatabaseError) and "division by zero" in str(results[1])
        assert results[2] == (b"25", b"versions", b"built")
        (conn,) = db.connections
        assert (await db.run(DIVIDE, [5]))[0] == b"20" and db.connections == [conn]
        with pytest.raises(LoopDatabaseError, match="syntax error"):
            await db.run("SELEKT %s", [1])
        assert (await db.run(DIVIDE, [10]))[0] == b"10" and db.connections == [conn]

    run_closing(db, scenario)


@pytest.mark.django_db
def test_a_lost_connection_fails_its_statements_and_is_replaced(pool) -> None:  # type: ignore[no-untyped-def]
    db = LoopDatabase(1, connect_like_django, pool)

    def terminate(pid: int) -> None:
        with connect_like_django() as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])

    async def scenario() -> None:
        await db.run(DIVIDE, [1])
        (conn,) = db.connections
        slow = asyncio.ensure_future(db.run("SELECT pg_sleep(%s)::text::bytea, 'v'::bytea, 'b'::bytea", [30]))
        await asyncio.sleep(0)  # one turn: the statement is queued on the connection
        assert [p.kind for p in conn.pending] == ["prepare", "query"]
        await asyncio.get_running_loop().run_in_executor(pool, terminate, conn.pgconn.backend_pid)
        with pytest.raises(LoopDatabaseError, match="terminating connection"):
            await slow
        assert conn.closed
        assert (await db.run(DIVIDE, [4]))[0] == b"25"
        assert len(db.connections) == 1 and db.connections[0] is not conn

    run_closing(db, scenario)


@pytest.mark.django_db
def test_a_cancelled_request_leaves_the_others_their_answers(pool) -> None:  # type: ignore[no-untyped-def]
    db = LoopDatabase(1, connect_like_django, pool)

    async def scenario() -> None:
        await db.run(DIVIDE, [1])
        first = asyncio.ensure_future(db.run(DIVIDE, [2]))
        await asyncio.sleep(0)  # queued
        first.cancel()
        assert (await db.run(DIVIDE, [3]))[0] == b"33"
        assert first.cancelled() and db.connections[0].in_flight == 0

    run_closing(db, scenario)


@pytest.mark.django_db
def test_an_old_connection_is_replaced(pool, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db = LoopDatabase(1, connect_like_django, pool)

    async def scenario() -> None:
        await db.run(DIVIDE, [1])
        (first,) = db.connections
        monkeypatch.setattr(loopdb, "KEEP_CONNECTION_S", 0)
        assert (await db.run(DIVIDE, [2]))[0] == b"50"
        assert first.closed and len(db.connections) == 1 and db.connections[0] is not first

    run_closing(db, scenario)


@pytest.mark.django_db
def test_a_second_connection_opens_only_when_the_first_is_busy(pool) -> None:  # type: ignore[no-untyped-def]
    db = LoopDatabase(2, connect_like_django, pool)

    async def scenario() -> None:
        await db.run(DIVIDE, [1])
        await db.run(DIVIDE, [2])
        assert len(db.connections) == 1  # one at a time never needed a second
        await asyncio.gather(db.run(DIVIDE, [3]), db.run(DIVIDE, [4]))
        assert len(db.connections) == 2

    run_closing(db, scenario)


def test_an_unreachable_database_is_an_error_for_the_caller(pool) -> None:  # type: ignore[no-untyped-def]
    def refuse() -> psycopg.Connection:
        return psycopg.Connection.connect("host=127.0.0.1 port=1 connect_timeout=2")

    db = LoopDatabase(1, refuse, pool)
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(db.run(DIVIDE, [1]))
    assert db.connections == [] and db.opening is None
