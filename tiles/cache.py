"""The tile cache: a bounded in-process LRU in front of an optional Redis shared by every worker.

Entries are gzip-compressed tile bytes (what most clients take as is), keyed by everything that
decides a tile's content: layers, z/x/y, filters, the jurisdiction (only for scoped layers) and
the layer versions. A new version is a new key, so nothing is ever invalidated: old entries fall
out of the LRU (and expire in Redis). Live layers' keys hold a time bucket instead of a version.

Redis is optional and never fatal: if it is down, tiles are computed as if it missed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings

from config.metrics import TILE_CACHE_HIT, TILE_CACHE_MISS

log = logging.getLogger(__name__)
ENTRY_OVERHEAD = 200  # bytes of bookkeeping counted per entry, so empty tiles still cost room


class LruBytes:
    """A thread-safe LRU of bytes values bounded by total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, *, count: bool = True) -> bytes | None:
        """count: a hit is a hit of the tile cache (metrics); a second look of the same request
        passes False. Misses are counted where a missed tile is stored (TileCache.set), since a
        request may look here more than once before it renders."""
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
        if value is not None and count:
            TILE_CACHE_HIT.inc("local")
        return value

    def set(self, key: str, value: bytes) -> None:
        cost = len(value) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.size -= len(old) + ENTRY_OVERHEAD
            self.entries[key] = value
            self.size += cost
            while self.size > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.size -= len(evicted) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self.entries)


class TileCache:
    def __init__(self, max_bytes: int, redis_url: str = "", namespace: str = "") -> None:
        self.local = LruBytes(max_bytes)
        self.namespace = namespace
        self.redis_url = redis_url
        self.redis = None
        self.async_client: Any = None
        self.async_loop: asyncio.AbstractEventLoop | None = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def redis_key(self, key: str) -> str:
        return "onemap:tile:" + hashlib.blake2b(f"{self.namespace}|{key}".encode(), digest_size=16).hexdigest()

    def get(self, key: str) -> bytes | None:
        value = self.local.get(key)
        if value is not None or self.redis is None:
            return value
        try:
            stored = self.redis.get(self.redis_key(key))
        except Exception as error:  # noqa: BLE001 — a cache outage must not fail the tile
            log.warning("tile cache: Redis get failed: %s", error)
            return None
        return self.remembered(key, stored)

    def remembered(self, key: str, stored: object) -> bytes | None:
        """A value read from Redis (None if it had none), kept in the local LRU too."""
        if stored is None:
            return None
        TILE_CACHE_HIT.inc("redis")
        # The client does not decode responses, so this is bytes; a str would be someone else's entry.
        value = stored if isinstance(stored, bytes) else str(stored).encode()
        self.local.set(key, value)
        return value

    def async_redis(self) -> Any:
        """A redis.asyncio client for the running event loop (its connections belong to that loop)."""
        loop = asyncio.get_running_loop()
        if self.async_client is None or self.async_loop is not loop:
            import redis.asyncio

            self.async_client = redis.asyncio.Redis.from_url(self.redis_url, socket_timeout=0.5,
                                                              socket_connect_timeout=0.5)
            self.async_loop = loop
        return self.async_client

    async def shared_get(self, key: str) -> bytes | None:
        """get() for the event loop: the local LRU, then Redis without blocking the loop."""
        value = self.local.get(key, count=False)  # the caller (tiles.asgi) looked there already
        if value is not None or self.redis is None:
            return value
        try:
            stored = await self.async_redis().get(self.redis_key(key))
        except Exception as error:  # noqa: BLE001 — a cache outage must not fail the tile
            log.warning("tile cache: Redis get failed: %s", error)
            return None
        return self.remembered(key, stored)

    async def shared_set(self, key: str, value: bytes, ttl_s: int) -> None:
        """set() for the event loop."""
        TILE_CACHE_MISS.inc()
        self.local.set(key, value)
        if self.redis is not None:
            try:
                await self.async_redis().set(self.redis_key(key), value, ex=ttl_s)
            except Exception as error:  # noqa: BLE001
                log.warning("tile cache: Redis set failed: %s", error)

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """A tile rendered after a miss, kept (counted as the miss)."""
        TILE_CACHE_MISS.inc()
        self.local.set(key, value)
        if self.redis is not None:
            try:
                self.redis.set(self.redis_key(key), value, ex=ttl_s)
            except Exception as error:  # noqa: BLE001
                log.warning("tile cache: Redis set failed: %s", error)


_cache: TileCache | None = None
_cache_lock = threading.Lock()


def tile_cache() -> TileCache | None:
    """The process's cache, or None when ONEMAP_TILE_CACHE is off."""
    global _cache
    if not settings.ONEMAP_TILE_CACHE:
        return None
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                # The database name keeps a test database's tiles apart from the dev database's.
                _cache = TileCache(settings.ONEMAP_TILE_CACHE_MB * 2**20, settings.REDIS_URL,
                                   namespace=str(settings.DATABASES["default"]["NAME"]))
    return _cache


def reset() -> None:
    """Forget the process's cache (tests, or after changing settings)."""
    global _cache
    with _cache_lock:
        _cache = None
