"""TileJSON 3.0.0 for a layer list: versioned, signed tile URLs and the vector_layers of the
registry. The URL carries the filters of the TileJSON request, so a filtered map is one URL."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.db import models
from django.http import HttpRequest

from geo.extent import map_extent
from tiles.auth import TileUser, issue_token
from tiles.params import filter_query_string
from tiles.registry import CLUSTERS, GENERALISE_MAX_ZOOM, TileLayer
from tiles.service import current_versions, version_digest
from tiles.sql import TileQuery

CENTER = [116.39, 39.91, 10]
TILE_PATH = "/tiles/{layers}/{{z}}/{{x}}/{{y}}.mvt"


@cache
def column_types(table: str) -> dict[str, str]:
    """TileJSON field descriptions from the Django model of a table: what a property holds."""
    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    kinds: dict[str, str] = {}
    for field in model._meta.concrete_fields:
        if isinstance(field, models.BooleanField):
            kind = "Boolean"
        elif isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
            kind = "Number"
        elif isinstance(field, models.DateTimeField):
            kind = "String (time, ISO 8601)"
        else:
            kind = "String"
        if field.column is not None:  # a concrete field always has one; the stubs allow None
            kinds[field.column] = f"{kind}: {field.verbose_name}"
    return kinds


def vector_layer(layer: TileLayer) -> dict[str, Any]:
    types = column_types(layer.table)
    fields = {name: types.get(column, "String") for name, column in layer.properties}
    description = layer.description
    if layer.low_zoom == CLUSTERS:
        fields |= {"count": f"Number: points in the cluster (zoom <= {GENERALISE_MAX_ZOOM})",
                   "cluster": f"Boolean: true for a cluster (zoom <= {GENERALISE_MAX_ZOOM})"}
        description += f" Zoom {GENERALISE_MAX_ZOOM} and below: clusters with a count."
    return {"id": layer.id, "description": description, "minzoom": layer.minzoom, "maxzoom": layer.maxzoom,
            "fields": fields}


def tile_url(request: HttpRequest, tq: TileQuery, user: TileUser, versions: dict[str, int]) -> str:
    ids = ",".join(lq.layer.id for lq in tq.layers)
    query = "&".join(filter(None, [
        f"v={version_digest(tq, versions)}",
        filter_query_string(tq.layers),
        f"t={issue_token(user.user_id, user.jurisdiction)}",
    ]))
    return request.build_absolute_uri(TILE_PATH.format(layers=ids)).replace("%7B", "{").replace("%7D", "}") + "?" + query


def tilejson(request: HttpRequest, tq: TileQuery, user: TileUser) -> dict[str, Any]:
    layers = [lq.layer for lq in tq.layers]
    return {
        "tilejson": "3.0.0",
        "name": "OneMap " + ", ".join(layer.id for layer in layers),
        "description": " ".join(layer.title for layer in layers),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tile_url(request, tq, user, current_versions(tq))],
        "minzoom": min(layer.minzoom for layer in layers),
        "maxzoom": max(layer.maxzoom for layer in layers),
        # From the data (geo.extent): a map client requests no tile outside these bounds.
        "bounds": map_extent(),
        "center": CENTER,
        "vector_layers": [vector_layer(layer) for layer in layers],
    }
