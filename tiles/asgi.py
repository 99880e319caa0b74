"""A fast path for signed tile URLs in front of Django's HTTP application (config/asgi.py puts
it there; it expects Django to be set up already).

Why: under ASGI, Django runs each request's sync code in a fresh thread, and its database
connections are per thread, so every tile request through a Django view opened a new PostgreSQL
connection (~40 ms, most of a tile's time). The tile URLs MapLibre and QGIS fetch carry a
signed token (?t=), so they need neither a session nor middleware: this wrapper answers them
directly. 304s and hits in the process's cache are answered on the event loop; misses run
tiles.service.serve in a small pool of long-lived threads that keep their connections.

Everything else (pages, APIs, WebSockets, tile URLs without a token) goes to the wrapped
application unchanged, and a tile answered here is byte for byte what the Django view answers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection
from django.http import QueryDict

from config.problems import PROBLEM_CONTENT_TYPE, Problem
from tiles.auth import read_token
from tiles.params import parse_filters, parse_layers, parse_tile
from tiles.service import TileAnswer, answer_without_database, http_parts, serve
from tiles.sql import TileQuery
from tiles.views import accepts_gzip

log = logging.getLogger(__name__)

TILE_PATH = re.compile(r"^/tiles/(?P<layers>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)\.mvt$")
# Threads that run tile statements, per worker process: about the database's useful parallelism.
DB_THREADS = int(os.environ.get("ONEMAP_TILE_DB_THREADS", "4"))
# Misses run in this thread pool, not on the event loop over an async connection: tried, and on 2
# shared cores the pool was as fast at concurrency 1 and faster at 8, where libpq and zlib overlap
# outside the GIL (bench/RESULTS.md, 2026-11 cold-path run).


# How long a pool thread keeps a connection taken from psycopg's pool before handing it back.
KEEP_CONNECTION_S = 300


def keep_connection_fresh() -> None:
    """These threads live on, and so do their connections: drop one that broke or grew too old
    (what Django's request signals do for a request thread). With psycopg's pool, Django's own
    rule (CONN_MAX_AGE = 0) would hand the connection back after every tile and take one again
    (~0.7 ms, and the connection's prepared tile statements would go with it), so a pool thread
    keeps its connection for KEEP_CONNECTION_S instead."""
    if connection.connection is None:
        return
    pooled = "pool" in connection.settings_dict["OPTIONS"]
    if not pooled:
        connection.close_if_unusable_or_obsolete()
        return
    if connection.errors_occurred:
        if not connection.is_usable():
            connection.close()
            return
        connection.errors_occurred = False
    if not connection.get_autocommit():
        connection.close()
        return
    opened = connection.close_at  # Django sets it to connect time + CONN_MAX_AGE (0 with a pool)
    if opened is not None and time.monotonic() - opened > KEEP_CONNECTION_S:
        connection.close()


def serve_in_pool(tq: TileQuery, version: str | None, if_none_match: str | None) -> TileAnswer:
    keep_connection_fresh()
    return serve(tq, version, if_none_match)


class TileFastPath:
    def __init__(self, app: Any, threads: int = DB_THREADS) -> None:
        self.app = app
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tiles-db")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = TILE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        query = QueryDict(scope.get("query_string", b"")) if match else None
        if match is None or query is None or "t" not in query or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, response_headers, body = await self.answer(match, query, headers)
        except Problem as problem:
            status, body = problem.status, json.dumps(problem.body(), ensure_ascii=False).encode()
            response_headers = [("Content-Type", PROBLEM_CONTENT_TYPE), *problem.headers.items()]
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    async def answer(self, match: re.Match[str], query: QueryDict,
                     headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        zoom, col, row = parse_tile(match["z"], match["x"], match["y"])
        layer_queries = parse_filters(parse_layers(match["layers"]), query)
        user = read_token(query.get("t") or "")  # present (checked in __call__), maybe empty
        tq = TileQuery(layer_queries, zoom, col, row, user.jurisdiction)
        version, if_none_match = query.get("v"), headers.get("if-none-match")
        answer = answer_without_database(tq, version, if_none_match) if version is not None else None
        if answer is None:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self.pool, serve_in_pool, tq, version, if_none_match)
        return http_parts(answer, accepts_gzip(headers.get("accept-encoding", "")))
