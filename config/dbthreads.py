"""Database connections of long-lived worker threads (the tile and ingest fast paths).

Django opens a connection per thread and closes it at the end of each request through request
signals; threads that serve many requests outside Django's handler get neither. They keep their
connection (opening one costs ~40 ms, and its prepared statements go with it) and call
`keep_connection_fresh()` before each piece of work, which does what the request signals would."""

from __future__ import annotations

import time

from django.db import DEFAULT_DB_ALIAS, connections

from config import dbhealth

# How long a worker thread keeps a connection taken from psycopg's pool before handing it back.
KEEP_CONNECTION_S = 300


def keep_connection_fresh() -> None:
    """Drop this thread's connection if it broke, was left in a transaction, or grew too old.
    With psycopg's pool, Django's own rule (CONN_MAX_AGE = 0) would hand the connection back after
    every request and take one again (~0.7 ms, and the connection's prepared statements would go
    with it), so the thread keeps it for KEEP_CONNECTION_S."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy is a context-local lookup
    pooled = "pool" in db.settings_dict["OPTIONS"]
    generation = dbhealth.generation()
    if db.connection is None:
        db.onemap_pool_generation = generation  # type: ignore[attr-defined]
        return
    if pooled and getattr(db, "onemap_pool_generation", generation) != generation:
        # The pool was replaced after a database outage: this connection is from the old one.
        db.onemap_pool_generation = generation  # type: ignore[attr-defined]
        try:
            db.close()
        except Exception:  # a dead connection may fail to close; it is dropped all the same
            db.connection = None
        return
    if not pooled:
        db.close_if_unusable_or_obsolete()
        return
    if db.errors_occurred:
        if not db.is_usable():
            db.close()
            return
        db.errors_occurred = False
    if not db.get_autocommit():
        db.close()
        return
    opened = db.close_at  # Django sets it to connect time + CONN_MAX_AGE (0 with a pool)
    if opened is not None and time.monotonic() - opened > KEEP_CONNECTION_S:
        db.close()
