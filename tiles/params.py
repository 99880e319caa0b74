"""Checking a tile request: the layer list, z/x/y and the filter parameters. Anything wrong is a
4xx problem (config.problems), never a 500: a non-number is 400, a tile that cannot exist is 404."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from django.http import QueryDict

from config.problems import Problem
from tiles import registry
from tiles.registry import MAX_ZOOM, TileLayer
from tiles.sql import LayerQuery

# Query parameters that are not filters: the version digest and the signed token of a tile URL.
RESERVED_PARAMS = {"v", "t"}
MAX_LAYERS = len(registry.LAYERS)
ORDER = {layer.id: index for index, layer in enumerate(registry.LAYERS)}


def parse_layers(raw: str) -> tuple[TileLayer, ...]:
    ids = raw.split(",")
    if len(ids) > MAX_LAYERS or len(set(ids)) != len(ids):
        raise Problem(400, f"{raw!r}: name each layer once, at most {MAX_LAYERS}.", title="Invalid layer list")
    layers = []
    for layer_id in ids:
        layer = registry.get(layer_id)
        if layer is None:
            known = ", ".join(layer.id for layer in registry.LAYERS)
            raise Problem(404, f"No tile layer {layer_id[:64]!r}. Layers: {known}.", title="Unknown layer")
        layers.append(layer)
    # In the registry's order, whatever the URL's: "a,b" and "b,a" are one request shape, so one
    # cache key and one prepared statement (each layer order used to be a statement of its own:
    # 6,000 shuffled requests grew two PostgreSQL backends to ~600 MiB each).
    return tuple(sorted(layers, key=lambda layer: ORDER[layer.id]))


def parse_tile(z: str, x: str, y: str) -> tuple[int, int, int]:
    numbers = []
    for name, raw in (("z", z), ("x", x), ("y", y)):
        # isdigit() alone accepts other scripts' digits (e.g. '٣'); tile numbers are ASCII.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
            raise Problem(400, f"{name}={raw[:32]!r} is not a tile number (a non-negative integer).",
                          title="Invalid tile address")
        numbers.append(int(raw))
    zoom, col, row = numbers
    if zoom > MAX_ZOOM:
        raise Problem(404, f"Zoom {zoom} is beyond the deepest tile served ({MAX_ZOOM}).", title="No such tile")
    if col >= 1 << zoom or row >= 1 << zoom:
        raise Problem(404, f"Tile {zoom}/{col}/{row} does not exist: x and y run from 0 to {(1 << zoom) - 1}.",
                      title="No such tile")
    return zoom, col, row


def parse_filters(layers: tuple[TileLayer, ...], query: QueryDict | Mapping[str, str]) -> tuple[LayerQuery, ...]:
    """Each filter parameter narrows every requested layer that declares it; a parameter that no
    requested layer declares is an error (a typo must not silently return everything)."""
    allowed = {f.param for layer in layers for f in layer.filters}
    unknown = sorted(set(query.keys()) - allowed - RESERVED_PARAMS)
    if unknown:
        raise Problem(400, f"Unknown query parameter(s): {', '.join(unknown)}. Filters of these layers: "
                           f"{', '.join(sorted(allowed)) or 'none'}.", title="Invalid query parameter")
    checked: dict[str, tuple[str, ...]] = {}
    for param in sorted(allowed & set(query.keys())):
        raw = query.get(param, "")
        values = tuple(sorted({v.strip() for v in raw.split(",")}))
        # The same parameter may mean different things in two layers (status of a camera, of a
        # hotspot): a value must be valid for every requested layer that declares it.
        for flt in {f for layer in layers for f in layer.filters if f.param == param}:
            for value in values:
                if flt.choices and value not in flt.choices:
                    raise Problem(400, f"{param}={value[:64]!r} is not allowed: {flt.describe()}.",
                                  title="Invalid filter value")
                if flt.pattern is not None and not flt.pattern.match(value):
                    raise Problem(400, f"{param}={value[:64]!r} is not valid: {flt.describe()}.",
                                  title="Invalid filter value")
        checked[param] = values
    return tuple(
        LayerQuery(layer, tuple((f, checked[f.param]) for f in layer.filters if f.param in checked))
        for layer in layers
    )


def filter_query_string(layer_queries: tuple[LayerQuery, ...]) -> str:
    """The canonical filter part of a tile URL or cache key: sorted, one value list per parameter."""
    params = {f.param: ",".join(values) for lq in layer_queries for f, values in lq.filters}
    return urlencode(sorted(params.items()), safe=",")


# Checked layer lists, per (layers, filter parameters) of the URL: a map asks for many tiles with the
# same ones. Bounded; a request that is refused raises every time and is not remembered.
CHECKED: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[LayerQuery, ...]] = {}
MAX_CHECKED = 1024


def checked_layers(raw_layers: str, query: Mapping[str, str]) -> tuple[LayerQuery, ...]:
    """parse_filters(parse_layers(raw_layers), query), remembered."""
    key = (raw_layers, tuple([(k, v) for k, v in query.items() if k not in RESERVED_PARAMS]))
    found = CHECKED.get(key)
    if found is None:
        found = parse_filters(parse_layers(raw_layers), query)
        if len(CHECKED) >= MAX_CHECKED:
            CHECKED.clear()
        CHECKED[key] = found
    return found
