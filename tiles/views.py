"""The tile endpoints. Thin: tiles.params checks the request, tiles.auth says who asks,
tiles.service answers (cache, versions, one SQL statement). Errors are RFC 9457 problems.

An empty tile is `200` with an empty body (not 204): every client (MapLibre, QGIS/GDAL, plain
caches) treats it as "nothing here", and it carries the same ETag and Cache-Control as any tile."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

from config.problems import Problem, problem_view
from tiles import style as map_style
from tiles.auth import tile_user
from tiles.params import parse_filters, parse_layers, parse_tile
from tiles.service import http_parts, serve
from tiles.sql import TileQuery
from tiles.tilejson import tilejson as build_tilejson


def tile_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @problem_view
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise Problem(405, f"{request.method} is not allowed here.", headers={"Allow": "GET, HEAD"})
        return view(request, *args, **kwargs)

    return wrapper


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, q = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return q.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


@tile_endpoint
def tile(request: HttpRequest, layers: str, z: str, x: str, y: str) -> HttpResponse:
    zoom, col, row = parse_tile(z, x, y)
    layer_queries = parse_filters(parse_layers(layers), request.GET)
    user = tile_user(request)
    answer = serve(TileQuery(layer_queries, zoom, col, row, user.jurisdiction),
                   request.GET.get("v"), request.headers.get("If-None-Match"))
    status, headers, body = http_parts(answer, accepts_gzip(request.headers.get("Accept-Encoding", "")))
    response = HttpResponse(body, status=status)
    if status == 304 or "Content-Type" not in dict(headers):
        del response["Content-Type"]
    for name, value in headers:
        response[name] = value
    return response


def json_response(body: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(json.dumps(body, ensure_ascii=False), content_type="application/json")
    # The URLs inside carry the current versions and a fresh token: always ask again.
    response["Cache-Control"] = "private, no-cache"
    return response


@tile_endpoint
def tilejson(request: HttpRequest, layers: str) -> HttpResponse:
    layer_queries = parse_filters(parse_layers(layers), request.GET)
    user = tile_user(request)
    return json_response(build_tilejson(request, TileQuery(layer_queries, 0, 0, 0, user.jurisdiction), user))


@tile_endpoint
def style(request: HttpRequest) -> HttpResponse:
    return json_response(map_style.style(request, tile_user(request)))


@tile_endpoint
def not_found(request: HttpRequest, rest: str) -> HttpResponse:
    raise Problem(404, "Tiles are at /tiles/{layers}/{z}/{x}/{y}.mvt, TileJSON at /tiles/{layers}.json, "
                       "the map style at /tiles/style.json.", title="Not Found")
