"""Statements written out in this codebase, run as server-side prepared statements on the raw
psycopg connection: the tile statement (tiles.service) and the hot statements of every dispatch
action (the place snap, the recommendation, the duplicate search, the timeline reads and inserts).

Django's PostgreSQL backend binds parameters on the client (psycopg's ClientCursor) and opens its
connections with prepare_threshold=None, under which psycopg ignores even prepare=True; so
PostgreSQL parsed and planned every statement again. For these, planning cost as much as running
or more (a z14 tile ~0.4 ms of planning; pg_stat_statements, one dispatcher: the duplicate search
1.7 ms planning against 0.17 ms running, the timeline reads and inserts together ~1 ms a cycle).

`fetch` sets a threshold no statement reaches (psycopg then prepares nothing on its own, and
Django's client-bound statements are never prepared anyway) so that prepare=True works, bounds
the connection's prepared statements (`max_prepared`, least recently used out), and runs the
statement under Django's error wrapping and query log (tests' CaptureQueriesContext, DEBUG).
Our pool is psycopg's own, which keeps a connection's prepared statements; a transaction-pooling
PgBouncer in front would need its max_prepared_statements (PgBouncer 1.21+)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.contrib.gis.db.models import GeometryField
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, GeneratedField, Model
from psycopg.pq import ExecStatus

ONLY_WHEN_ASKED = 2**31 - 1
TUPLES_OK = ExecStatus.TUPLES_OK
MAX_PREPARED = 64

Params = dict[str, Any] | list[Any] | tuple[Any, ...]


def fetch(sql: str, params: Params, *, binary: bool = False, max_prepared: int = MAX_PREPARED) -> list[tuple[Any, ...]]:
    """Run one statement prepared; its rows (none for a statement without a result)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy is a context-local lookup
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None or raw.prepared_max != max_prepared:  # a connection set up by Django
        raw.prepare_threshold = ONLY_WHEN_ASKED
        raw.prepared_max = max_prepared
    started = time.monotonic()
    with db.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True, binary=binary)
        # (Not `cursor.description`: it builds a Column object per column of the result.)
        rows = cursor.fetchall() if cursor.pgresult is not None and cursor.pgresult.status == TUPLES_OK else []
    if db.queries_logged:  # logged as Django's cursor would
        db.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return rows


def insert(instance: Model) -> None:
    """INSERT a new model instance, every column but generated ones, as the ORM's `save()` would
    (field defaults from the constructor, `auto_now_add` from pre_save), prepared; a primary key
    the database makes is set on the instance. No model signals are sent (none are connected to the
    models this serves: tasks, assignments, pushes)."""
    meta = instance._meta
    db = connections[DEFAULT_DB_ALIAS]
    fields: list[Field[Any, Any]] = [f for f in meta.concrete_fields if not isinstance(f, GeneratedField)
                                     and not (f.primary_key and getattr(instance, f.attname) is None)]
    marks, values = [], []
    for field in fields:
        value = field.pre_save(instance, True)
        if isinstance(field, GeometryField):
            marks.append("ST_GeomFromEWKB(%s)")  # plain bytes: no adapter needed on the raw connection
            values.append(None if value is None else bytes(value.ewkb))
        else:
            marks.append("%s")
            values.append(field.get_db_prep_save(value, connection=db))
    columns = ", ".join(f'"{f.column}"' for f in fields)
    [(pk,)] = fetch(f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({", ".join(marks)})'  # noqa: S608 (model names)
                    f' RETURNING "{meta.pk.column}"', values)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = DEFAULT_DB_ALIAS
