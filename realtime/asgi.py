"""A fast path for device ingest (`POST /api/positions`, `/ingest/osmand`) in front of Django's
HTTP application (config/asgi.py puts it there; it expects Django to be set up already).

Why: a phone running Traccar Client sends one fix per request. Through Django's ASGI handler
every request pays for a fresh thread (the per-request ThreadSensitiveContext that runs the sync
request signals), the hops between the async handler and the sync-only middlewares (WhiteNoise,
the bearer-token middleware) and back to the async view: the event loop's thread was at ~90 %
CPU at ~110 single-fix requests/s while the ingest threads waited for it. Device requests need
none of that — no session, no cookie, no CSRF, no static files: they carry a device token, which
the views check. So this wrapper builds the Django request itself and runs the same view
function on the ingest threads (which keep their database connections). The answer is the one
Django would give: the same view, the same problems; other paths go to Django unchanged."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse

from config.headers import raw_headers
from config.problems import PROBLEM_CONTENT_TYPE, Problem, problem_response
from realtime import conf
from realtime.views import INGEST_THREADS, osmand_view, positions_view, run_on_ingest_thread

log = logging.getLogger(__name__)

VIEWS = {"/api/positions": positions_view, "/ingest/osmand": osmand_view}


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Any, limit: int) -> bytes:
    """The request body, refused beyond `limit` bytes without reading the rest into memory."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class IngestFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        view = VIEWS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if view is None:
            await self.app(scope, receive, send)
            return
        limit = conf.get("MAX_BATCH_BYTES")
        try:
            body = await read_body(receive, limit)
        except ConnectionAbortedError:
            return  # the client went away: nothing was stored, nothing to answer
        except BodyTooLarge:
            response = problem_response(Problem(413, f"the body is larger than {limit} bytes", title="Content Too Large"))
        else:
            request = ASGIRequest(scope, io.BytesIO(body))
            loop = asyncio.get_running_loop()
            try:
                # In this request's context: its logs carry its request id (config/logs.py).
                response = await loop.run_in_executor(INGEST_THREADS, contextvars.copy_context().run,
                                                      run_on_ingest_thread, view, request)
            except Exception:  # a bug: a 500 problem, as Django's handler would answer, and the log
                log.exception("ingest %s failed", scope.get("path"))
                response = HttpResponse(json.dumps({"type": "about:blank", "title": "Internal Server Error",
                                                    "status": 500}), status=500, content_type=PROBLEM_CONTENT_TYPE)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        headers += raw_headers()  # no middleware runs here: the headers Django's answers carry
        headers.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.content})
