"""A fast path for signed tile URLs in front of Django's HTTP application (config/asgi.py puts
it there; it expects Django to be set up already).

Why: under ASGI, Django runs each request's sync code in a fresh thread, and its database
connections are per thread, so every tile request through a Django view opened a new PostgreSQL
connection (~40 ms, most of a tile's time). The tile URLs MapLibre and QGIS fetch carry a
signed token (?t=), so they need neither a session nor middleware: this wrapper answers them
directly. 304s and hits in the process's cache are answered on the event loop, and so are
versioned misses: the shared Redis cache is asked with its asyncio client, and the statement runs
over the loop's own pipelined connections (tiles.loopdb). The rest (a derived table to rebuild,
URLs without `v`, a statement that failed on the loop) runs tiles.service.serve in a small pool
of long-lived threads that keep their connections.

Everything else (pages, APIs, WebSockets, tile URLs without a token) goes to the wrapped
application unchanged, and a tile answered here is byte for byte what the Django view answers."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from django.conf import settings
from django.db import DatabaseError

from accounts.jurisdiction import Jurisdiction
from config.dbthreads import keep_connection_fresh
from config.headers import RAW_HEADERS as SECURITY_HEADERS
from config.problems import PROBLEM_CONTENT_TYPE, Problem
from tiles import derived
from tiles.auth import UNKNOWN, check_user, look_up_user, read_token, remembered
from tiles.cache import tile_cache
from tiles.loopdb import LoopDatabase, LoopDatabaseError, connect_like_django
from tiles.params import checked_layers, parse_tile
from tiles.service import (
    TileAnswer,
    Versioned,
    answer_without_database,
    compress,
    http_parts,
    rendered_answer,
    serve,
    versioned,
)
from tiles.sql import TileQuery, derived_layers, tile_sql
from tiles.views import accepts_gzip

log = logging.getLogger(__name__)

TILE_PATH = re.compile(r"^/tiles/(?P<layers>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)\.mvt$")
# Per worker process: the threads that serve the misses the event loop does not (tiles.loopdb).
DB_THREADS = int(os.environ.get("ONEMAP_TILE_DB_THREADS", "4"))
# Per worker process: the pipelined connections versioned misses run their statement on from the
# event loop (tiles.loopdb); 0 sends every miss to the thread pool. One per worker measured best on
# the 2-core bench machine (z14, concurrency 8: ~2,880 vs ~2,430 tiles/s with two): statements
# queue in the pipeline rather than in PostgreSQL, and arrive there in batches.
LOOP_CONNECTIONS = int(os.environ.get("ONEMAP_TILE_LOOP_CONNECTIONS", "1"))


@dataclass(frozen=True, slots=True)
class TileRequest:
    match: re.Match[str]
    query: dict[str, str]
    head: bool


# An answer as config.http writes it: status, lower-case headers (with content-length), body.
Response = tuple[int, list[tuple[bytes, bytes]], bytes]


def serve_in_pool(tq: TileQuery, version: str | None, if_none_match: str | None) -> TileAnswer:
    keep_connection_fresh()
    return serve(tq, version, if_none_match, checked_locally=version is not None)


def look_up_in_pool(user_id: int) -> Jurisdiction | None:
    keep_connection_fresh()
    return look_up_user(user_id)


def query_params(raw: bytes) -> dict[str, str]:
    """The query string as QueryDict reads it (UTF-8, else Latin-1; blank values kept; a repeated
    parameter's last value wins, as QueryDict.get; at most DATA_UPLOAD_MAX_NUMBER_FIELDS, else
    ValueError), as a plain dict: building a QueryDict cost ~4x more on the event loop."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=limit))
    # Nothing to unquote (a tile URL as TileJSON writes it): parse_qsl's result, at a third of its cost.
    fields = text.split("&")
    if limit is not None and len(fields) > limit:
        raise ValueError("Max number of fields exceeded")
    query = {}
    for field in fields:
        if field:
            name, _, value = field.partition("=")
            query[name] = value
    return query


@functools.lru_cache(maxsize=256)
def parsed_json(text: bytes) -> Any:
    """The versions a tile statement returns, parsed once per distinct text (they change only
    when the data does). Shared: callers only read them."""
    return json.loads(text)


class TileFastPath:
    def __init__(self, app: Any, threads: int = DB_THREADS, loop_connections: int = LOOP_CONNECTIONS) -> None:
        self.app = app
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tiles-db")
        self.lookups: dict[int, asyncio.Future[Jurisdiction | None]] = {}
        self.db = LoopDatabase(loop_connections, connect_like_django, self.pool) if loop_connections > 0 else None

    def claim(self, method: str, path: str, query_string: bytes) -> TileRequest | None:
        """The request, if this fast path answers it: GET or HEAD of a tile URL with a token (?t=)."""
        match = TILE_PATH.match(path)
        if match is None or method not in ("GET", "HEAD"):
            return None
        try:
            query = query_params(query_string)
        except ValueError:  # too many fields: Django answers that (400)
            return None
        return TileRequest(match, query, method == "HEAD") if "t" in query else None

    async def respond(self, request: TileRequest, headers: list[tuple[bytes, bytes]]) -> Response:
        """Status, headers (lower-case, with content-length) and body; for HEAD, no body. Used
        through ASGI (__call__) and by config.http, which answers claimed requests below ASGI."""
        if_none_match = accept_encoding = ""
        for name, value in headers:  # only the two headers a tile answer depends on (lower-case)
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        try:
            status, response_headers, body = await self.answer(request.match, request.query, if_none_match or None,
                                                               accept_encoding)
        except Problem as problem:
            status, body = problem.status, json.dumps(problem.body(), ensure_ascii=False).encode()
            response_headers = [("Content-Type", PROBLEM_CONTENT_TYPE), *problem.headers.items()]
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
        raw += SECURITY_HEADERS
        raw.append((b"content-length", str(len(body)).encode()))
        return status, raw, b"" if request.head else body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        request = self.claim(scope["method"], scope["path"], scope.get("query_string", b"")) \
            if scope["type"] == "http" else None
        if request is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = await self.respond(request, scope["headers"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(self, match: re.Match[str], query: dict[str, str], if_none_match: str | None,
                     accept_encoding: str) -> tuple[int, list[tuple[str, str]], bytes]:
        zoom, col, row = parse_tile(match["z"], match["x"], match["y"])
        layer_queries = checked_layers(match["layers"], query)
        user = read_token(query["t"])  # present (checked in __call__), maybe empty
        check_user(user, await self.current_jurisdiction(user.user_id))
        tq = TileQuery(layer_queries, zoom, col, row, user.jurisdiction)
        version = query.get("v")
        req = versioned(tq, version) if version is not None else None
        answer = answer_without_database(req, if_none_match) if req is not None else None
        if answer is None:
            if req is not None and self.db is not None:
                answer = await self.render_on_loop(req)
            if answer is None:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self.pool, serve_in_pool, tq, version, if_none_match)
        return http_parts(answer, accepts_gzip(accept_encoding))

    async def current_jurisdiction(self, user_id: int) -> Jurisdiction | None:
        """The token's user's state (tiles.auth): remembered, else looked up in the thread pool,
        once for all the tiles of a map view that ask at the same time. If the database cannot
        answer, the last state known is used rather than failing tiles that need no database."""
        current = remembered(user_id)
        if current is not UNKNOWN:
            return current
        pending = self.lookups.get(user_id)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self.pool, look_up_in_pool, user_id)
            self.lookups[user_id] = pending
            pending.add_done_callback(lambda _: self.lookups.pop(user_id, None))
        try:
            return await asyncio.shield(pending)
        except (psycopg.Error, DatabaseError, OSError):
            known = remembered(user_id, stale_ok=True)
            if known is UNKNOWN:
                raise Problem(503, "The database cannot check the tile token's user now; try again shortly.",
                              title="Service Unavailable", headers={"Retry-After": "5"}) from None
            log.warning("tile token user %s: lookup failed, using the last known state", user_id)
            return known

    async def render_on_loop(self, req: Versioned) -> TileAnswer | None:
        """A versioned miss on the event loop: the shared (Redis) cache asked with its asyncio
        client, the statement run over tiles.loopdb. None when the thread pool must serve it: a
        derived table to rebuild, or a database error (the pool then serves it or reports it as
        Django would)."""
        assert self.db is not None
        cache = tile_cache()
        if cache is not None and cache.redis is not None:
            hit = await cache.shared_get(req.key)
            if hit is not None:
                return TileAnswer(200, hit, req.etag, req.control)
        tq = req.tq
        try:
            tile, versions_json, built_json = await self.db.run(*tile_sql(tq))
        except (LoopDatabaseError, psycopg.Error, OSError) as error:
            log.warning("tile statement on the event loop failed, retried in the pool: %s", error)
            return None
        versions, built = parsed_json(versions_json), parsed_json(built_json)
        if derived.stale_layers(derived_layers(tq), versions, built):
            return None
        answer, keep = rendered_answer(req, compress(tile), versions)
        if keep and cache is not None:
            await cache.shared_set(req.key, answer.gz, req.ttl_s)
        return answer
