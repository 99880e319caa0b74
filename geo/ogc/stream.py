"""A large items page, streamed: the features come in chunks of CHUNK_FEATURES, each one keyset
query (`id > last id of the previous chunk`, the same statement as a small page), so the worker
holds one chunk, not the page (a 10,000-camera page is ~3.5 MB of GeoJSON; 64 of them at once took
a worker from 215 to 1,440 MiB when each was built whole).

Chunks, not a server-side cursor: nothing lives in the database between two chunks (no open
transaction under a slow client, no WITH HOLD cursor to close if the client goes away), so an
abandoned body leaves nothing behind but its slot, which it frees (geo.ogc.limits).

The body is the FeatureCollection with its members in this order: type, timeStamp, features, then
numberReturned, numberMatched and links, since the count and the next page's cursor (the last id)
are known only once the features are out. JSON objects are unordered; GDAL and QGIS parse the page
whole, so the order changes nothing for them.

Under ASGI the body is an async iterator whose queries run through sync_to_async in the request's
own thread (the thread-sensitive context Django gives each request), so they use the request's
connection; under WSGI (and Django's test client) it is a plain iterator. Given a sync iterator
under ASGI, Django would first collect it into one list: the whole page in memory again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import HttpRequest, StreamingHttpResponse

from accounts.jurisdiction import Jurisdiction
from geo.ogc.limits import Slot
from geo.ogc.params import ItemsQuery
from geo.ogc.query import number_matched, page_sql
from geo.ogc.registry import Collection

# Features per chunk: ~180 KB of camera GeoJSON, a few ms of PostgreSQL's time per query.
CHUNK_FEATURES = 500

# (features returned, numberMatched or None, last id or None) -> the text after the features.
Trailer = Callable[[int, int | None, Any], str]


class PageBody:
    """The page as a sequence of byte chunks; step() gives the next one, None after the last."""

    def __init__(self, collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction, head: str,
                 trailer: Trailer, slot: Slot) -> None:
        self.collection = collection
        self.items = items
        self.jurisdiction = jurisdiction
        self.head = head
        self.trailer = trailer
        self.slot = slot
        self.started = False
        self.returned = 0
        self.last_key: Any = items.after
        self.done = False

    def step(self) -> bytes | None:
        if self.done:
            return None
        if not self.started:
            self.started = True
            return self.head.encode()
        wanted = min(CHUNK_FEATURES, self.items.limit - self.returned)
        returned = 0
        if wanted > 0:
            # The first chunk starts where the page does (cursor or offset); the others after the
            # last id sent.
            chunk = replace(self.items, limit=wanted, after=self.last_key,
                            offset=self.items.offset if self.returned == 0 else 0)
            with connection.cursor() as cursor:
                cursor.execute(*page_sql(self.collection, chunk, self.jurisdiction))
                returned, features, last_key = cursor.fetchone()
            if returned:
                prefix = "," if self.returned else ""
                self.returned += returned
                self.last_key = last_key
                return (prefix + features).encode()
        self.done = True
        with connection.cursor() as cursor:
            matched = number_matched(cursor, self.collection, self.items, self.jurisdiction, self.returned)
        self.close()
        last = self.last_key if self.returned else None
        return self.trailer(self.returned, matched, last).encode()

    def close(self) -> None:
        """Free the slot: no database work, so any thread may call it, any number of times."""
        self.done = True
        self.slot.release()


class SyncBody:
    def __init__(self, body: PageBody) -> None:
        self.body = body
        self.close = body.close  # Django's response.close() calls it

    def __iter__(self) -> Iterator[bytes]:
        try:
            while (chunk := self.body.step()) is not None:
                yield chunk
        finally:
            self.body.close()


class AsyncBody:
    def __init__(self, body: PageBody) -> None:
        self.body = body
        self.close = body.close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        step = sync_to_async(self.body.step)  # thread-sensitive: the request's thread and connection
        try:
            while (chunk := await step()) is not None:
                yield chunk
        finally:
            self.body.close()


def streaming_response(request: HttpRequest, body: PageBody, content_type: str) -> StreamingHttpResponse:
    """Django picks sync or async iteration by what the content offers: offer only the one the
    server uses. Either one's close() frees the slot when the server is done with the response,
    even if the body was never read."""
    content: SyncBody | AsyncBody = AsyncBody(body) if isinstance(request, ASGIRequest) else SyncBody(body)
    return StreamingHttpResponse(content, content_type=content_type)
