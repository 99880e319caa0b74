"""The hot statements written out in this codebase, run as server-side prepared statements.

Django's PostgreSQL backend binds parameters on the client and turns psycopg's prepared
statements off (prepare_threshold=None, for transaction poolers such as PgBouncer), so PostgreSQL
parses and plans every statement again. For the few statements every dispatch action runs,
planning cost more than running (pg_stat_statements, one dispatcher: the duplicate search 1.7 ms
planning and 0.17 ms running; the place snap 0.46 and 0.16; a recommendation 0.5 and 0.7).
`fetch` sends such a statement with its parameters apart and prepare=True: psycopg prepares it
once per connection (keeping up to `prepared_max` per connection, least recently used out), and
PostgreSQL plans it afresh for five runs, then generically when that is no worse.

Errors are Django's (wrap_database_errors), and the statement is logged like any other when
queries are (tests' CaptureQueriesContext, DEBUG). Our pool is psycopg's own, which keeps a
connection's prepared statements; a transaction-pooling PgBouncer in front would need its
max_prepared_statements (PgBouncer 1.21+)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.db import connection

Params = dict[str, Any] | list[Any] | tuple[Any, ...]


def fetch(sql: str, params: Params) -> list[tuple[Any, ...]]:
    """Run one statement prepared; its rows (none for a statement without a result)."""
    connection.ensure_connection()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall() if cursor.description is not None else []
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return rows
