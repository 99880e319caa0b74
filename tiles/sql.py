"""The SQL of a tile: every requested layer in ONE statement, with the versions it was built from.

    SELECT layer1_mvt || layer2_mvt || ..., <layer versions>, <derived-table versions>

An MVT tile is a sequence of layer messages, so concatenating the ST_AsMVT of each layer is a
valid composite tile. Each layer reads its 3857 geometry (a stored generated column with a GiST
index) with `&&` against the tile's box grown by the buffer, so no row is transformed at request time.
The tile's boxes are bound as box2d parameters (tile_box: ST_TileEnvelope's arithmetic, in Python):
taken from a CTE, the geometry envelope was cast to box2d once per row, and the join to it cost
too; ~8% of the z14 statement in all.
Reading the versions in the same statement gives them the same snapshot as the rows: a cached
tile is stored under exactly the versions it shows.

Identifiers come only from tiles.registry (quoted); request values are bound (%s)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from accounts.jurisdiction import Jurisdiction
from geo.ogc.query import filter_clauses, ident, literal
from geo.ogc.registry import JURISDICTION, Filter
from tiles.registry import BUFFER, CLUSTERS, EXTENT, SIMPLIFIED, TileLayer

# Clusters: each tile is split into CLUSTER_CELLS x CLUSTER_CELLS cells (16 screen pixels in a 512 px
# MapLibre tile). A power of two, so the cells of zoom z-1 are unions of 2x2 cells of zoom z.
CLUSTER_CELLS = 32
# Half the Web Mercator world width, metres.
HALF_WORLD = 20037508.342789244

# The values a tile statement binds: tile numbers, the margin, filter values and layer-id arrays.
SqlParam = int | float | str | list[str]
Params = list[SqlParam]
# A statement's parameters as its builder lays them out: a value, or a function of the tile for
# the values that change from tile to tile of the same shape (the boxes, the column, the row, cluster cells).
TileValue = Callable[["TileQuery"], int | str]
ParamTemplate = list[SqlParam | TileValue]


@dataclass(frozen=True)
class LayerQuery:
    """One layer of a tile request, with its checked filters."""

    layer: TileLayer
    filters: tuple[tuple[Filter, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class TileQuery:
    layers: tuple[LayerQuery, ...]
    z: int
    x: int
    y: int
    jurisdiction: Jurisdiction = field(default_factory=lambda: Jurisdiction("city"))

    @cached_property
    def box(self) -> str:
        return tile_box(self.z, self.x, self.y)

    @cached_property
    def buffered_box(self) -> str:
        """Grown by one unit more than the buffer: the index test (&&) compares float4 boxes, so
        it is fuzzy at the edge; ST_AsMVTGeom (exact, after snapping to the grid) decides."""
        return tile_box(self.z, self.x, self.y, (BUFFER + 1) / EXTENT)

    @cached_property
    def shape(self) -> tuple:
        """What the statement and the cache key depend on besides z/x/y: the jurisdiction and each
        layer's id and filter values (cheap to hash, unlike the registry entries themselves)."""
        return self.jurisdiction, tuple([(lq.layer.id, tuple([(f.param, v) for f, v in lq.filters]) if lq.filters else ())
                                         for lq in self.layers])

    def drawn(self) -> tuple[LayerQuery, ...]:
        """The layers that have anything at this zoom."""
        return tuple(lq for lq in self.layers if lq.layer.minzoom <= self.z <= lq.layer.maxzoom)


def tile_box(z: int, x: int, y: int, margin: float = 0.0) -> str:
    """box2d text of ST_TileEnvelope(z, x, y, margin => margin) in the default (Web Mercator)
    bounds, with the same floating-point operations, so the same doubles (tests compare them)."""
    tiles = 1 << min(z, 31)
    size = (HALF_WORLD - -HALF_WORLD) / tiles
    if 1 + margin * 2 > tiles:
        x1, x2 = -HALF_WORLD, HALF_WORLD
    else:
        x1, x2 = -HALF_WORLD + size * (x - margin), -HALF_WORLD + size * (x + 1 + margin)
    y1 = max(HALF_WORLD - size * (y + 1 + margin), -HALF_WORLD)
    y2 = min(HALF_WORLD - size * (y - margin), HALF_WORLD)
    return f"BOX({x1!r} {y1!r},{x2!r} {y2!r})"


def box(tq: TileQuery) -> str:
    return tq.box


def buffered_box(tq: TileQuery) -> str:
    return tq.buffered_box


def where(alias: str, lq: LayerQuery, jurisdiction: Jurisdiction) -> tuple[list[str], ParamTemplate]:
    clauses: list[str] = []
    params: ParamTemplate = []
    if lq.layer.scope == JURISDICTION:
        scope, scope_params = jurisdiction.sql(alias)
        if scope != "TRUE":
            clauses.append(scope)
            params.extend(scope_params)
    filter_sql, filter_params = filter_clauses(lambda column: f"{alias}.{ident(column)}", lq.filters)
    return clauses + filter_sql, [*params, *filter_params]


def properties_sql(layer: TileLayer) -> str:
    return ", ".join(f"t.{ident(column)}{'::text' if is_varchar(layer.table, column) else ''} AS {ident(name)}"
                     for name, column in layer.properties)


@functools.cache
def is_varchar(table: str, column: str) -> bool:
    """Django's CharFields are varchar columns. The MVT encoder writes a text value directly but
    looks up and calls the type's output function for every varchar value of every feature
    (~5% of a z14 camera tile's statement); the cast to text is free and the strings the same."""
    from django.apps import apps
    from django.db import connection

    for model in apps.get_models():
        if model._meta.db_table == table:
            for f in model._meta.concrete_fields:
                if f.column == column:
                    return (f.db_type(connection) or "").startswith("varchar")
    return False


def raw_sql(lq: LayerQuery, tq: TileQuery) -> tuple[str, ParamTemplate]:
    layer = lq.layer
    clauses, params = where("t", lq, tq.jurisdiction)
    geom = f"t.{ident(layer.geometry_column)}"
    conditions = " AND ".join([f"{geom} && %s::box2d", *clauses])
    return (
        f"SELECT ST_AsMVTGeom({geom}, %s::box2d, {EXTENT}, {BUFFER}, true) AS geom, {layer.id_sql} AS fid, "  # noqa: S608 (registry identifiers, bound values)
        f"{properties_sql(layer)} FROM {ident(layer.table)} t WHERE {conditions}"
    ), [box, buffered_box, *params]


def simplified_sql(lq: LayerQuery, tq: TileQuery) -> tuple[str, ParamTemplate]:
    """Polygons simplified for this zoom (tiles.derived), with the source row's properties."""
    layer = lq.layer
    clauses, params = where("t", lq, tq.jurisdiction)
    conditions = " AND ".join(["g.layer = %s", "g.zoom = %s", "g.geom_3857 && %s::box2d", *clauses])
    return (
        f"SELECT ST_AsMVTGeom(g.geom_3857, %s::box2d, {EXTENT}, {BUFFER}, true) AS geom, {layer.id_sql} AS fid, "  # noqa: S608 (registry identifiers, bound values)
        f"{properties_sql(layer)} FROM tiles_generalisedpolygon g "
        f"JOIN {ident(layer.table)} t ON t.{ident(layer.key_column)} = g.key WHERE {conditions}"
    ), [box, layer.id, tq.z, buffered_box, *params]


def cluster_cells(z: int, x: int, y: int) -> tuple[int, int, int, int]:
    """The cluster cells of tile z/x/y: cell columns and rows (inclusive). Each cell lies in exactly
    one tile, so a cluster is never drawn twice and its count belongs to one tile."""
    return x * CLUSTER_CELLS, (x + 1) * CLUSTER_CELLS - 1, y * CLUSTER_CELLS, (y + 1) * CLUSTER_CELLS - 1


def first_cell_x(tq: TileQuery) -> int:
    return cluster_cells(tq.z, tq.x, tq.y)[0]


def last_cell_x(tq: TileQuery) -> int:
    return cluster_cells(tq.z, tq.x, tq.y)[1]


def first_cell_y(tq: TileQuery) -> int:
    return cluster_cells(tq.z, tq.x, tq.y)[2]


def last_cell_y(tq: TileQuery) -> int:
    return cluster_cells(tq.z, tq.x, tq.y)[3]


def cluster_sql(lq: LayerQuery, tq: TileQuery) -> tuple[str, ParamTemplate]:
    """Sum the cluster cube over the dimensions the request does not fix: one feature per cell,
    at the mean of its members, with their count."""
    clauses, params = where("c", lq, tq.jurisdiction)
    conditions = " AND ".join(["c.layer = %s", "c.zoom = %s", "c.cell_x BETWEEN %s AND %s",
                               "c.cell_y BETWEEN %s AND %s", *clauses])
    cells_across = (1 << tq.z) * CLUSTER_CELLS
    return (
        f"SELECT ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(k.x, k.y), 3857), %s::box2d, {EXTENT}, {BUFFER}, true) AS geom, "  # noqa: S608 (registry identifiers, bound values)
        "k.fid, k.count, true AS cluster FROM ("
        "SELECT sum(c.sum_x) / sum(c.count) AS x, sum(c.sum_y) / sum(c.count) AS y, "
        f"c.cell_y::bigint * {cells_across} + c.cell_x AS fid, sum(c.count)::int AS count "
        f"FROM tiles_pointcluster c WHERE {conditions} GROUP BY c.cell_x, c.cell_y) k"
    ), [box, lq.layer.id, tq.z, first_cell_x, last_cell_x, first_cell_y, last_cell_y, *params]


LAYER_SQL = {"raw": raw_sql, SIMPLIFIED: simplified_sql, CLUSTERS: cluster_sql}


def layer_sql(lq: LayerQuery, tq: TileQuery) -> tuple[str, ParamTemplate]:
    rows, params = LAYER_SQL[lq.layer.generalised_at(tq.z)](lq, tq)
    # OFFSET 0 keeps PostgreSQL from pushing `q.geom IS NOT NULL` into the scan, where it computed
    # ST_AsMVTGeom a second time per row (once to filter, once for the tile): ~40% of the z14 cost.
    mvt = (
        f"(SELECT coalesce(ST_AsMVT(q, {literal(lq.layer.id)}, {EXTENT}, 'geom', 'fid'), ''::bytea) "  # noqa: S608 (registry identifiers, bound values)
        f"FROM ({rows} OFFSET 0) q WHERE q.geom IS NOT NULL)"
    )
    return mvt, params


def derived_layers(tq: TileQuery) -> list[str]:
    """The layers this tile reads from a derived table (whose freshness must be checked)."""
    return [lq.layer.id for lq in tq.drawn() if lq.layer.generalised_at(tq.z) != "raw"]


def tile_sql(tq: TileQuery) -> tuple[str, Params]:
    """(tile bytea, {layer: version}, {layer: derived version}) for the whole request.

    The statement's text and most of its parameters depend only on the request's shape (layers,
    filters, jurisdiction, zoom), which repeats from tile to tile: they are built once per shape
    (building them cost ~15 us, a tenth of the server's own work on a z14 tile)."""
    key = (tq.z, tq.shape)
    entry = STATEMENTS.get(key)
    if entry is None:
        if len(STATEMENTS) >= MAX_STATEMENTS:
            STATEMENTS.clear()
        entry = STATEMENTS[key] = build_tile_sql(tq)
    sql, template = entry
    return sql, [p(tq) if callable(p) else p for p in template]


STATEMENTS: dict[tuple, tuple[str, ParamTemplate]] = {}
MAX_STATEMENTS = 1024


def build_tile_sql(tq: TileQuery) -> tuple[str, ParamTemplate]:
    parts: list[str] = []
    params: ParamTemplate = []
    for lq in tq.drawn():
        sql, layer_params = layer_sql(lq, tq)
        parts.append(sql)
        params.extend(layer_params)
    tile = " || ".join(parts) or "''::bytea"
    return (
        f"SELECT {tile}, "  # noqa: S608 (registry identifiers, bound values)
        # A layer with no version row is at version 0, as current_versions() reads it; a derived
        # table never built is null, that is stale (tiles.derived).
        f"{versions_of('tiles_layerversion', [lq.layer.id for lq in tq.layers], '0')}, "
        f"{versions_of('tiles_derivedstate', derived_layers(tq), 'null')}"
    ), params


def versions_of(table: str, layer_ids: list[str], missing: str) -> str:
    """{layer: version} of the named layers, as JSON text; a layer without a row reads as
    `missing` (a JSON value). Built by concatenation: json_object_agg over the same rows made the
    whole z14 tile statement ~10% slower. The layer ids are registry identifiers and part of the
    statement's shape anyway, so they are literals, not bound arrays: with an array parameter
    PostgreSQL's generic plan is costed for ~10 rows per array, above the custom plans, and a
    prepared tile statement was then planned afresh on every execution (~0.4 ms at z14)."""
    if not layer_ids:
        return "'{}'::text"
    members = [f"{literal(json.dumps(i) + ':')} || coalesce((SELECT v.version FROM {table} v "  # noqa: S608 (registry identifiers)
               f"WHERE v.layer = {literal(i)})::text, {literal(missing)})" for i in layer_ids]
    return "('{' || " + " || ',' || ".join(members) + " || '}')"


def versions_sql(layer_ids: list[str]) -> tuple[str, Params]:
    return "SELECT layer, version FROM tiles_layerversion WHERE layer = ANY(%s)", [layer_ids]

