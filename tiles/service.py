"""Serving one tile request: versions, cache, ETag, and the one SQL round trip on a miss.

Three paths, by what the URL carries:
- `?v=<digest>` (the URLs TileJSON and style.json hand out): the digest names the versions of the
  requested layers, so the content of the URL never changes: a cache hit needs no query at all,
  a miss is ONE statement (the tile and the versions it was built from). If the data moved on
  since the URL was issued, the current tile is served with `no-cache` and not stored under v.
- no `v`, cache on: one small query reads the current versions (to find the cache key), then
  the tile statement on a miss.
- no `v`, cache off: the tile statement only.
Live layers (officers, vehicles) have no version: their key holds a time bucket of
ONEMAP_TILE_LIVE_MAX_AGE_S seconds, and their responses may be reused that long only."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from isal import igzip

from config import prepared
from geo.ogc.registry import JURISDICTION
from tiles import derived
from tiles.cache import tile_cache
from tiles.loopdb import MAX_PREPARED
from tiles.params import filter_query_string
from tiles.sql import TileQuery, derived_layers, tile_sql, versions_sql

IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
VERSIONED_TTL_S = 7 * 24 * 3600
# gzip level 1 with Intel ISA-L (isal): at z14 ~50 us a tile instead of ~150 us with zlib's level 1
# (itself ~3x faster than level 6 at z12 for ~10% more bytes), for about the same size; this runs
# on every uncached tile, and a cached tile is compressed once.
GZIP_LEVEL = 1
MVT = "application/vnd.mapbox-vector-tile"
@dataclass(frozen=True)
class TileAnswer:
    status: int  # 200 or 304
    gz: bytes  # gzip-compressed MVT, or b"" for an empty tile (and for 304)
    etag: str
    cache_control: str


def version_digest(tq: TileQuery, versions: dict[str, int]) -> str:
    """A short name for the versions of the requested (versioned) layers; '0' if none is."""
    parts = [f"{lq.layer.id}:{versions.get(lq.layer.id, 0)}" for lq in tq.layers if lq.layer.versioned]
    if not parts:
        return "0"
    return hashlib.blake2b("|".join(parts).encode(), digest_size=6).hexdigest()


def current_versions(tq: TileQuery) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(*versions_sql([lq.layer.id for lq in tq.layers]))
        return dict(cursor.fetchall())


def run_tile_statement(tq: TileQuery) -> tuple[Any, Any, Any]:
    """The tile statement as a server-side prepared statement with binary results
    (config.prepared): Django's cursor binds client-side, so PostgreSQL would parse and plan the
    whole statement on every tile and send the bytea hex-encoded. The statement's text depends
    only on its shape (layers, generalisation, filters, scope), so each shape is prepared once per
    connection, and the MAX_PREPARED most recently used are kept."""
    sql, params = tile_sql(tq)
    # A SELECT of expressions, with no FROM, always yields one row.
    [(tile, versions, built)] = prepared.fetch(sql, params, binary=True, max_prepared=MAX_PREPARED)
    return tile, versions, built


def tile_row(row: tuple[Any, Any, Any]) -> tuple[bytes, dict[str, int], dict[str, int]]:
    """The tile statement's row: the tile bytes, the layer versions, the derived tables' versions."""
    tile, versions, built = row
    if isinstance(versions, str):  # json_object_agg arrives parsed or as text, by driver setup
        versions, built = json.loads(versions), json.loads(built)
    return bytes(tile), versions, built


def compress(tile: bytes) -> bytes:
    return igzip.compress(tile, GZIP_LEVEL, mtime=0) if tile else b""


def render(tq: TileQuery) -> tuple[bytes, dict[str, int]]:
    """The gzip-compressed tile (b"" if empty) and the versions it shows: one statement, or, if a
    derived low-zoom table was behind its source, a rebuild and the statement again."""
    for _attempt in range(2):
        tile, versions, built = tile_row(run_tile_statement(tq))
        if not derived.ensure_fresh(derived_layers(tq), versions, built):
            break
    return compress(tile), versions


def base_key(tq: TileQuery) -> str:
    ids, rest = KEY_PARTS.get(tq.shape) or key_parts(tq)
    return f"{ids}|{tq.z}/{tq.x}/{tq.y}|{rest}"


KEY_PARTS: dict[tuple, tuple[str, str]] = {}


def key_parts(tq: TileQuery) -> tuple[str, str]:
    """The parts of a cache key that depend on the request's shape only, kept per shape."""
    ids = ",".join(lq.layer.id for lq in tq.layers)
    scoped = any(lq.layer.scope == JURISDICTION for lq in tq.layers)
    j = tq.jurisdiction
    scope = f"{j.level}:{j.district or ''}:{j.street or ''}" if scoped else "-"
    if len(KEY_PARTS) >= 1024:
        KEY_PARTS.clear()
    parts = KEY_PARTS[tq.shape] = (ids, f"{filter_query_string(tq.layers)}|{scope}")
    return parts


def etag_of(key: str) -> str:
    return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


@dataclass(frozen=True)
class Versioned:
    """A versioned tile URL (`?v=`): its cache key, ETag and Cache-Control, computed once."""

    tq: TileQuery
    url_version: str
    base: str  # base_key(tq)
    bucket: str  # the time bucket of live layers, else ""
    key: str
    etag: str
    control: str
    ttl_s: int
    live: bool


def versioned(tq: TileQuery, url_version: str) -> Versioned:
    live = any(lq.layer.live for lq in tq.layers)
    live_age = settings.ONEMAP_TILE_LIVE_MAX_AGE_S if live else 0
    bucket = f"|live:{int(time.time() // live_age)}" if live else ""
    base = base_key(tq)
    key = f"{base}|{url_version}{bucket}"
    return Versioned(tq, url_version, base, bucket, key, etag_of(key),
                     f"private, max-age={live_age}" if live else IMMUTABLE,
                     live_age if live else VERSIONED_TTL_S, live)


def answer_without_database(req: Versioned, if_none_match: str | None) -> TileAnswer | None:
    """A 304, or a hit in this process's cache; None if neither. Touches no database and no
    network, so tiles.asgi may call it on the event loop."""
    if matches(if_none_match, req.etag):
        return TileAnswer(304, b"", req.etag, req.control)
    cache = tile_cache()
    if cache is not None and (hit := cache.local.get(req.key)) is not None:
        return TileAnswer(200, hit, req.etag, req.control)
    return None


def rendered_answer(req: Versioned, gz: bytes, versions: dict[str, int]) -> tuple[TileAnswer, bool]:
    """The answer from the tile just rendered, and whether it may be cached under req.key."""
    digest = version_digest(req.tq, versions)
    if digest == req.url_version:
        return TileAnswer(200, gz, req.etag, req.control), True
    # The URL names versions that are gone: serve today's tile, but let no one keep it as v's.
    current = f"{req.base}|{digest}{req.bucket}"
    return TileAnswer(200, gz, etag_of(current), req.control if req.live else REVALIDATE), False


def versioned_miss(req: Versioned, gz: bytes, versions: dict[str, int]) -> TileAnswer:
    """rendered_answer, kept in the cache (and in Redis: blocking, so not on the event loop)."""
    answer, keep = rendered_answer(req, gz, versions)
    cache = tile_cache()
    if keep and cache is not None:
        cache.set(req.key, gz, req.ttl_s)
    return answer


def http_parts(answer: TileAnswer, gzip_ok: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a tile answer (shared by the Django view and tiles.asgi)."""
    headers = [("ETag", answer.etag), ("Cache-Control", answer.cache_control), ("Vary", "Accept-Encoding")]
    if answer.status == 304:
        return 304, headers, b""
    headers.append(("Content-Type", MVT))
    if not answer.gz:
        return 200, headers, b""
    if gzip_ok:
        return 200, [*headers, ("Content-Encoding", "gzip")], answer.gz
    return 200, headers, gzip.decompress(answer.gz)


def serve(tq: TileQuery, url_version: str | None, if_none_match: str | None, *,
          checked_locally: bool = False) -> TileAnswer:
    """checked_locally: the caller (tiles.asgi) already ran answer_without_database and missed."""
    live = any(lq.layer.live for lq in tq.layers)
    live_age = settings.ONEMAP_TILE_LIVE_MAX_AGE_S
    bucket = f"|live:{int(time.time() // live_age)}" if live else ""
    live_control = f"private, max-age={live_age}"
    cache = tile_cache()
    base = base_key(tq)

    if url_version is not None:
        req = versioned(tq, url_version)
        if not checked_locally and (early := answer_without_database(req, if_none_match)) is not None:
            return early
        if cache is not None and (hit := cache.get(req.key)) is not None:
            return TileAnswer(200, hit, req.etag, req.control)
        gz, versions = render(tq)
        return versioned_miss(req, gz, versions)

    control = live_control if live else REVALIDATE
    if cache is None:
        gz, versions = render(tq)
        etag = etag_of(f"{base}|{version_digest(tq, versions)}{bucket}")
        return TileAnswer(304 if matches(if_none_match, etag) else 200, gz, etag, control)
    key = f"{base}|{version_digest(tq, current_versions(tq))}{bucket}"
    etag = etag_of(key)
    if matches(if_none_match, etag):
        return TileAnswer(304, b"", etag, control)
    if (hit := cache.get(key)) is not None:
        return TileAnswer(200, hit, etag, control)
    gz, versions = render(tq)
    key = f"{base}|{version_digest(tq, versions)}{bucket}"  # the versions may have moved meanwhile
    cache.set(key, gz, live_age if live else VERSIONED_TTL_S)
    return TileAnswer(200, gz, etag_of(key), control)
