"""Security headers on every answer (issue 14): Django's responses through the middleware below,
and the fast paths that answer without Django (tiles.asgi, realtime.asgi, config.http's direct
routes) with the same values from `raw_headers`.

Pages get a Content-Security-Policy that the one map passes with nothing inline: scripts and
styles only from this server (the map's configuration travels in a JSON <script> block, which is
data, not code); MapLibre's tile workers are blob: URLs (worker-src, and child-src for browsers
without worker-src); its canvas reads images from data:/blob:; fetches and the live WebSocket go
to this server only ('self' covers ws:/wss: on the same host and port in CSP Level 3). Every
other answer (tiles, JSON, problems) gets a policy that allows nothing, since it is never a page.
Framing is refused everywhere (frame-ancestors and X-Frame-Options), and MIME sniffing too."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config.http imports this module before Django is set up
    from django.http import HttpRequest, HttpResponse

PAGE_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",  # 'self': the field app's service worker (/field-sw.js)
    "child-src blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
NOT_A_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'"

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


# A script's own policy binds it only when it runs as a worker: the field app's service worker
# fetches its app shell, which "default-src 'none'" would refuse.
RUNS_AS_PAGE_OR_WORKER = ("text/html", "text/javascript", "application/javascript")


def security_headers(content_type: str) -> dict[str, str]:
    policy = PAGE_POLICY if content_type.startswith(RUNS_AS_PAGE_OR_WORKER) else NOT_A_PAGE_POLICY
    return {**COMMON, "Content-Security-Policy": policy}


# For the fast paths, which never answer a page: lower-case names, bytes (as ASGI and config.http send them).
RAW_HEADERS: list[tuple[bytes, bytes]] = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in security_headers("").items()]


def raw_headers() -> list[tuple[bytes, bytes]]:
    return list(RAW_HEADERS)


class SecurityHeadersMiddleware:
    """Outermost middleware: every Django response (pages, APIs, static files, errors) gets the
    headers, unless a view set its own value."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in security_headers(response.get("Content-Type", "")).items():
            response.headers.setdefault(name, value)
        return response
