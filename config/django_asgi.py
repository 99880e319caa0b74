"""Django's ASGI handler, with each request's middleware and view run as ONE synchronous call on a
reused thread.

Why: OneMap's middleware is synchronous (it reads the database: tokens, sessions, axes), and
Django's own ASGI handler runs a synchronous chain under ASGI as loop -> thread (the middleware) ->
loop (the async-capable axes middleware and `_get_response_async`) -> thread (the view) -> loop,
on a thread it creates and joins for every request (asgiref's per-request ThreadSensitiveContext).
Each hop waits for the GIL behind the other requests of the process. With 50 dispatchers on
2 cores, a plain `GET /api/me` cost 5.6 ms of server CPU, and the hops and thread starts were a
large part of it (bench/dispatch.py, bench/RESULTS.md).

Here the chain is loaded in synchronous mode, as under WSGI, and `get_response` runs it in one
call; the thread is taken from a free list of single-thread executors (asgiref's
ThreadSensitiveContext(executor=...)), so the request_started and request_finished signals (which
close the thread's database connection, returning it to the pool) run on the same thread as the
view, as before. Streaming responses are sent by Django's ASGI code, unchanged."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # A free list, not a fixed pool: the server's concurrency limit bounds how many requests
        # (so threads) there are at once, and an idle thread costs only its stack.
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1,
                                                                          thread_name_prefix="django")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._idle.append(executor)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> OneHopASGIHandler:
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
