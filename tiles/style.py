"""The one map's MapLibre style (version 8), built per user: the tile sources carry that user's
signed, versioned tile URLs, and their own district is highlighted.

Two vector sources, split by how long a tile may be reused: "onemap" (boundaries, grid cells,
hotspots, cameras: versioned, immutable URLs) and "live" (officers and vehicles at their latest
position: a few seconds). No `glyphs` and no `sprite`: MapLibre (>= 5.11) draws the labels with
the browser's own fonts, and circles need no icons, so nothing is fetched from anywhere else."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from geo.extent import map_extent
from tiles import registry
from tiles.auth import TileUser
from tiles.registry import GENERALISE_MAX_ZOOM
from tiles.service import current_versions
from tiles.sql import LayerQuery, TileQuery
from tiles.tilejson import tile_url

SOURCES = {
    "onemap": ("districts", "streets", "gridcells", "hotspots", "cameras"),
    "live": ("officers", "vehicles"),
}
LABEL_FONT = ["Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "sans-serif"]
CLUSTER = ["==", ["get", "cluster"], True]
NOT_CLUSTER = ["!=", ["get", "cluster"], True]


def cluster_radius(small: float, large: float) -> list[Any]:
    return ["interpolate", ["linear"], ["get", "count"], 1, small, 100, (small + large) / 2, 2000, large]


def map_layers(highlight: str) -> list[dict[str, Any]]:
    return [
        {"id": "background", "type": "background", "paint": {"background-color": "#eef1f4"}},
        {"id": "district-fill", "type": "fill", "source": "onemap", "source-layer": "districts",
         "paint": {"fill-color": ["case", ["==", ["get", "code"], highlight], "#c9dcf2", "#ffffff"],
                   "fill-opacity": 0.9}},
        {"id": "gridcell-line", "type": "line", "source": "onemap", "source-layer": "gridcells", "minzoom": 13,
         "paint": {"line-color": "#c3ccd5", "line-width": 0.5}},
        {"id": "street-line", "type": "line", "source": "onemap", "source-layer": "streets", "minzoom": 10,
         "paint": {"line-color": "#8ea0b1", "line-width": 0.8, "line-dasharray": [2, 1]}},
        {"id": "district-line", "type": "line", "source": "onemap", "source-layer": "districts",
         "paint": {"line-color": "#5b7083", "line-width": ["interpolate", ["linear"], ["zoom"], 8, 0.8, 12, 2]}},
        {"id": "camera-cluster", "type": "circle", "source": "onemap", "source-layer": "cameras",
         "maxzoom": GENERALISE_MAX_ZOOM + 1, "filter": CLUSTER,
         "paint": {"circle-color": "#4f7cac", "circle-opacity": 0.55, "circle-radius": cluster_radius(2, 14)}},
        {"id": "camera", "type": "circle", "source": "onemap", "source-layer": "cameras",
         "minzoom": GENERALISE_MAX_ZOOM + 1, "filter": NOT_CLUSTER,
         "paint": {"circle-radius": 3, "circle-color": ["match", ["get", "status"], "online", "#2f6fb0",
                                                       "offline", "#9aa5b1", "#d9822b"],
                   # The bureau's own cameras (it controls them) outlined apart from shared ones.
                   "circle-stroke-width": 1,
                   "circle-stroke-color": ["match", ["get", "source"], "self_built", "#12355b", "#ffffff"]}},
        {"id": "hotspot-cluster", "type": "circle", "source": "onemap", "source-layer": "hotspots",
         "maxzoom": GENERALISE_MAX_ZOOM + 1, "filter": CLUSTER,
         "paint": {"circle-color": "#d64545", "circle-opacity": 0.7, "circle-radius": cluster_radius(3, 16)}},
        {"id": "hotspot", "type": "circle", "source": "onemap", "source-layer": "hotspots",
         "minzoom": GENERALISE_MAX_ZOOM + 1, "filter": NOT_CLUSTER,
         "paint": {"circle-radius": 5, "circle-color": ["match", ["get", "status"], "open", "#d64545", "#8c9aa6"],
                   "circle-stroke-color": "#ffffff", "circle-stroke-width": 1}},
        {"id": "vehicle", "type": "circle", "source": "live", "source-layer": "vehicles",
         "paint": {"circle-radius": 4, "circle-color": "#2e8540", "circle-stroke-color": "#ffffff",
                   "circle-stroke-width": 1}},
        {"id": "officer", "type": "circle", "source": "live", "source-layer": "officers",
         "paint": {"circle-radius": 3, "circle-color": "#6a3d9a"}},
        # One label point per district (a polygon label would repeat on every tile it crosses).
        {"id": "district-label", "type": "symbol", "source": "district-labels",
         "layout": {"text-field": ["get", "name"], "text-font": LABEL_FONT,
                    "text-size": ["interpolate", ["linear"], ["zoom"], 8, 12, 12, 18]},
         "paint": {"text-color": "#23313f", "text-halo-color": "#ffffff", "text-halo-width": 1.5}},
    ]


def source(request: HttpRequest, layer_ids: tuple[str, ...], user: TileUser, bounds: list[float]) -> dict[str, Any]:
    layers = [registry.BY_ID[i] for i in layer_ids]
    tq = TileQuery(tuple(LayerQuery(layer) for layer in layers), 0, 0, 0, user.jurisdiction)
    return {
        "type": "vector",
        "tiles": [tile_url(request, tq, user, current_versions(tq))],
        "minzoom": min(layer.minzoom for layer in layers),
        "maxzoom": max(layer.maxzoom for layer in layers),
        "bounds": bounds,
        "attribution": "OneMap",
    }


def style(request: HttpRequest, user: TileUser) -> dict[str, Any]:
    bounds = map_extent()  # from the data (geo.extent), once for both sources
    return {
        "version": 8,
        "name": "OneMap 一图指挥调度",
        "center": [116.39, 39.91],
        "zoom": 9,
        "sources": {
            **{name: source(request, ids, user, bounds) for name, ids in SOURCES.items()},
            "district-labels": {"type": "geojson", "data": request.build_absolute_uri(reverse("map-district-labels"))},
        },
        "layers": map_layers(user.jurisdiction.district or ""),
    }
