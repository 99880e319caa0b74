"""WhiteNoise, with responses an ASGI server can stream without a warning.

Cause of Django's "StreamingHttpResponse must consume synchronous iterators in order to serve
them asynchronously" on every page load: OneMap runs under ASGI (uvicorn), and WhiteNoise answers
each static file (MapLibre's JS and CSS, our modules, even a 304) with a FileResponse whose
content is a synchronous file iterator. Django's ASGI handler can only stream asynchronous
iterators, so it warns and reads the whole synchronous one in a worker thread, in 4 KB blocks.
Here the same file is read through an asynchronous iterator: in 256 KB blocks, each in a thread
(asyncio.to_thread), so the event loop never blocks on the disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

BLOCK_BYTES = 256 * 1024


async def file_blocks(filelike: Any) -> AsyncIterator[bytes]:
    while True:
        block = await asyncio.to_thread(filelike.read, BLOCK_BYTES)
        if not block:
            return
        yield block


async def no_blocks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover (makes this an async generator)


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file: Any, request: HttpRequest) -> StreamingHttpResponse:
        response = WhiteNoiseMiddleware.serve(static_file, request)
        if response.streaming and not response.is_async:
            filelike = getattr(response, "file_to_stream", None)
            # The file stays in the response's closers (FileResponse registered it), so it is
            # closed when the response is, as before.
            response.streaming_content = file_blocks(filelike) if filelike is not None else no_blocks()
        return response
