"""Request bodies are limited before anything reads them (ASGI middleware in front of Django).

Django's ASGI handler spools a whole body to a temporary file before the view runs, so a view's
own size check comes after the cost: a 1 GB "photo" would be written to disk first. Here a
declared Content-Length over the limit is refused at once with 413, and a body without one
(chunked) is read only up to the limit. The limits are a table: the largest body each kind of
path takes; the rest get the default."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MB = 1024 * 1024
# (path pattern, largest body in bytes). Multipart overhead is allowed for on top of the photo.
LIMITS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^/api/tasks/\d+/photos$"), 10 * MB + 64 * 1024),
)
DEFAULT_LIMIT = 3 * MB


def limit_for(path: str) -> int:
    return next((limit for pattern, limit in LIMITS if pattern.match(path)), DEFAULT_LIMIT)


async def too_large(send: Send, limit: int) -> None:
    body = json.dumps({"type": "about:blank", "title": "Content Too Large", "status": 413,
                       "detail": f"the body is larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = limit + 1
            if size > limit:
                await too_large(send, limit)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length: read up to the limit, then hand the buffered body on.
        messages, total = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > limit:
                await too_large(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
