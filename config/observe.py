"""Where requests are measured and given a request id: every HTTP request, including the two
fast paths that answer below Django (tiles/asgi.py, realtime/asgi.py) and the signed tile URLs
that config/http.py answers below ASGI. And /metrics, for staff only.

- `MetricsASGI` wraps the whole HTTP application (config/asgi.py): it times each request, notes
  its status, and labels it with the route template Django resolved (`RouteLabelMiddleware`
  puts it in the ASGI scope) or, for the fast paths, their own templates.
- `MeteredRoute` wraps a direct route of config/http.py the same way.
- `metrics_view`: staff users (session or bearer API token); loopback clients only when
  ONEMAP_METRICS_LOOPBACK is on (off by default: behind a local reverse proxy every client
  would look like loopback)."""

from __future__ import annotations

import re
import time
import uuid
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from config import logs, metrics
from config.problems import Problem, problem_view, unauthorized

ROUTE_KEY = "onemap.route"  # the scope entry RouteLabelMiddleware fills
# The fast paths' routes, labelled as Django's own patterns for the same URLs are.
TILE_ROUTE = "/tiles/<layers>/<z>/<x>/<y>.mvt"
_TILE_PATH = re.compile(r"^/tiles/[^/]+/[^/]+/[^/]+/[^/]+\.mvt$")
FAST_PATHS = {"/api/positions": "/api/positions", "/ingest/osmand": "/ingest/osmand"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's (or proxy's) X-Request-ID when it is a plain short id, else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex[:16]


def route_of(scope: dict[str, Any]) -> str:
    route = scope.get(ROUTE_KEY)
    if route is not None:
        return str(route)
    path = scope.get("path", "")
    if path in FAST_PATHS:
        return FAST_PATHS[path]
    if _TILE_PATH.match(path):
        return TILE_ROUTE
    return metrics.UNMATCHED


class MetricsASGI:
    def __init__(self, app: Any) -> None:
        self.app = app
        metrics.start_background()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        token = logs.REQUEST_ID.set(request_id(scope.get("headers", [])))
        status: int | str = "none"  # the client went before any answer

        async def noting_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except BaseException:
            if status == "none":
                status = 500
            raise
        finally:
            metrics.observe_request(route_of(scope), scope.get("method", ""), status, time.perf_counter() - start)
            logs.REQUEST_ID.reset(token)


class MeteredRoute:
    """A config.http direct route, measured as MetricsASGI measures the rest."""

    def __init__(self, route: Any, label: str) -> None:
        self.route = route
        self.label = label

    def claim(self, method: str, path: str, query_string: bytes) -> tuple[str, Any] | None:
        claimed = self.route.claim(method, path, query_string)
        return None if claimed is None else (method, claimed)

    async def respond(self, claimed: tuple[str, Any], headers: list[tuple[bytes, bytes]]) -> Any:
        method, inner = claimed
        start = time.perf_counter()
        token = logs.REQUEST_ID.set(request_id(headers))
        status: int = 500  # config.http answers a route's exception with a 500
        try:
            answer = await self.route.respond(inner, headers)
            status = answer[0]
            return answer
        finally:
            metrics.observe_request(self.label, method, status, time.perf_counter() - start)
            logs.REQUEST_ID.reset(token)


@lru_cache(maxsize=512)
def _label(route: str) -> str:
    return metrics.route_template(route)


class RouteLabelMiddleware(MiddlewareMixin):
    """Tells MetricsASGI the route template Django resolved (the scope is shared with the request)."""

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        scope = getattr(request, "scope", None)
        match = request.resolver_match
        if scope is not None and match is not None:
            scope[ROUTE_KEY] = _label(match.route)
        return None


def _loopback(request: HttpRequest) -> bool:
    return request.META.get("REMOTE_ADDR", "") in {"127.0.0.1", "::1"}


@problem_view
def metrics_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_authenticated and (user.is_staff or user.is_superuser)):
        if not (settings.ONEMAP_METRICS_LOOPBACK and _loopback(request)):
            if user.is_authenticated:
                raise Problem(403, "metrics are for staff users")
            raise unauthorized()
    if request.method not in ("GET", "HEAD"):
        raise Problem(405, "GET only", headers={"Allow": "GET, HEAD"})
    from prometheus_client import CONTENT_TYPE_LATEST

    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
