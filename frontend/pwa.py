"""What makes /field an installable web app: the manifest and the service worker (which keeps the
app shell for offline use), and the site's favicon."""

from __future__ import annotations

import hashlib
import json
from functools import cache

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

# The app shell: what /field needs to start without a network. Tiles and APIs are not kept: an
# offline map shows the shell, the officer's last position and the pushes already received.
SHELL_STATIC = (
    "vendor/maplibre-gl/maplibre-gl.js", "vendor/maplibre-gl/maplibre-gl.css",
    "frontend/onemap.css", "frontend/i18n.js", "frontend/basemap.js", "frontend/theme.js",
    "frontend/live_units.js", "frontend/map_app.js", "frontend/field.js", "frontend/field_link.js",
    "frontend/field_tasks.js", "frontend/task_queue.js", "frontend/task_api.js",
    "frontend/icons/onemap-192.png", "frontend/icons/onemap.svg",
)
FIELD_SCOPE = "/field"


@cache
def shell_version() -> str:
    """A digest of the shell's files: a new release is a new cache, and the old one is dropped."""
    digest = hashlib.sha256()
    for name in SHELL_STATIC:
        path = finders.find(name)
        if path:
            with open(path, "rb") as handle:  # noqa: PTH123 (a path from the static finders)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    body = render_to_string("frontend/field_sw.js", {
        "version": shell_version(),
        "shell": json.dumps([FIELD_SCOPE, *(static(name) for name in SHELL_STATIC)]),
        "scope": FIELD_SCOPE,
    })
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    # Browsers check a worker for updates on navigation; it must not be served from a cache.
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    body = {
        "name": _("OneMap 执法终端"),
        "short_name": "OneMap",
        "lang": request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "zh-Hans",
        "start_url": FIELD_SCOPE,
        "scope": FIELD_SCOPE,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#1f3a56",
        "theme_color": "#1f3a56",
        "icons": [
            {"src": static("frontend/icons/onemap-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("frontend/icons/onemap-512.png"), "sizes": "512x512", "type": "image/png"},
            {"src": static("frontend/icons/onemap.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return HttpResponse(json.dumps(body, ensure_ascii=False), content_type="application/manifest+json")


@cache
def favicon_bytes() -> bytes:
    path = finders.find("frontend/icons/favicon.ico")
    assert path, "frontend/static/frontend/icons/favicon.ico is part of the app"
    with open(path, "rb") as handle:  # noqa: PTH123 (a path from the static finders)
        return handle.read()


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(favicon_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response
