"""The low-zoom tables, rebuilt from their source when the source's version moves on.

- Point clusters (cameras, hotspots): a count cube per zoom 0..11 and grid cell, split by the
  layer's filter and jurisdiction columns. Zoom 11 is grouped from the source rows; each coarser
  zoom from the zoom-11 cube (its cells are unions of 2x2 finer cells), all in one statement.
- Simplified polygons (grid cells): the source polygon simplified to about one tile pixel (1/4096
  of the tile) for every zoom from the layer's minzoom to 11.

A rebuild is one statement (DELETE + INSERT + state row in data-modifying CTEs): the version it
records and the rows it read share one snapshot. `ensure_fresh` runs it when a tile request finds
the derived version behind the layer version (so a changed hotspot is in its cluster at the next
request); `manage.py refresh_tiles` runs it ahead of time after a fixture load. An advisory lock
keeps concurrent workers from rebuilding the same layer twice."""

from __future__ import annotations

from django.db import connection, transaction

from geo.ogc.query import ident
from tiles.registry import CLUSTERS, GENERALISE_MAX_ZOOM, LAYERS, SIMPLIFIED, TileLayer
from tiles.sql import CLUSTER_CELLS, HALF_WORLD, Params

CUBE_COLUMNS = ("district_id", "street_id", "category", "source", "status")
WORLD = 2 * HALF_WORLD

STATE = (
    "INSERT INTO tiles_derivedstate (layer, version, built_at, rows) "
    "SELECT %s, v.version, now(), (SELECT count(*) FROM ins) FROM v "
    "ON CONFLICT (layer) DO UPDATE SET version = EXCLUDED.version, built_at = EXCLUDED.built_at, rows = EXCLUDED.rows"
)
VERSION = "v AS (SELECT coalesce((SELECT version FROM tiles_layerversion WHERE layer = %s), 0) AS version)"


def cluster_rebuild_sql(layer: TileLayer) -> tuple[str, Params]:
    dims = layer.cluster_dimensions
    assert set(dims) <= set(CUBE_COLUMNS), (layer.id, dims)
    finest = GENERALISE_MAX_ZOOM
    cell = WORLD / ((1 << finest) * CLUSTER_CELLS)
    geom = f"s.{ident(layer.geometry_column)}"
    dim_select = ", ".join(f"s.{ident(d)}::text AS {ident(d)}" for d in dims)
    dim_names = ", ".join(ident(d) for d in dims)
    cube_values = ", ".join(f"coalesce({ident(d)}, '')" if d in dims else "''" for d in CUBE_COLUMNS)
    sql = (
        f"WITH {VERSION}, "  # noqa: S608 (registry identifiers, bound values)
        f"finest AS (SELECT floor((ST_X({geom}) + {HALF_WORLD}) / {cell})::int AS cx, "
        f"floor(({HALF_WORLD} - ST_Y({geom})) / {cell})::int AS cy, {dim_select}, "
        f"count(*) AS n, sum(ST_X({geom})) AS sx, sum(ST_Y({geom})) AS sy "
        f"FROM {ident(layer.table)} s WHERE {geom} IS NOT NULL GROUP BY 1, 2, {dim_names}), "
        f"cube AS (SELECT z.zoom, f.cx >> ({finest} - z.zoom) AS cx, f.cy >> ({finest} - z.zoom) AS cy, "
        f"{dim_names}, sum(f.n) AS n, sum(f.sx) AS sx, sum(f.sy) AS sy "
        f"FROM finest f, generate_series(%s, {finest}) AS z(zoom) GROUP BY 1, 2, 3, {dim_names}), "
        "del AS (DELETE FROM tiles_pointcluster WHERE layer = %s), "
        "ins AS (INSERT INTO tiles_pointcluster (layer, zoom, cell_x, cell_y, "
        f"{', '.join(CUBE_COLUMNS)}, count, sum_x, sum_y) "
        f"SELECT %s, zoom, cx, cy, {cube_values}, n, sx, sy FROM cube RETURNING 1) "
        f"{STATE}"
    )
    return sql, [layer.id, layer.minzoom, layer.id, layer.id, layer.id]


def simplified_rebuild_sql(layer: TileLayer) -> tuple[str, Params]:
    geom = f"s.{ident(layer.geometry_column)}"
    tolerance = f"{WORLD} / (4096.0 * (1 << z.zoom))"
    sql = (
        f"WITH {VERSION}, "  # noqa: S608 (registry identifiers, bound values)
        "del AS (DELETE FROM tiles_generalisedpolygon WHERE layer = %s), "
        "ins AS (INSERT INTO tiles_generalisedpolygon (layer, zoom, key, geom_3857) "
        f"SELECT %s, z.zoom, s.{ident(layer.key_column)}::text, "
        f"ST_Multi(ST_SimplifyPreserveTopology({geom}, {tolerance})) "
        f"FROM {ident(layer.table)} s, generate_series(%s, {GENERALISE_MAX_ZOOM}) AS z(zoom) "
        f"WHERE {geom} IS NOT NULL RETURNING 1) "
        f"{STATE}"
    )
    return sql, [layer.id, layer.id, layer.id, layer.minzoom, layer.id]


REBUILD_SQL = {CLUSTERS: cluster_rebuild_sql, SIMPLIFIED: simplified_rebuild_sql}
STALE_SQL = (
    "SELECT coalesce((SELECT version FROM tiles_layerversion WHERE layer = %s), 0) "
    "IS DISTINCT FROM (SELECT version FROM tiles_derivedstate WHERE layer = %s)"
)


def rebuild(layer: TileLayer, force: bool = False) -> bool:
    """Rebuild the layer's derived rows if they are behind its version (or always, with force).
    True if it rebuilt."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Session-independent, transaction-scoped: a second worker waits, then finds it fresh.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["tiles.derived." + layer.id])
        if not force:
            cursor.execute(STALE_SQL, [layer.id, layer.id])
            if not cursor.fetchone()[0]:
                return False
        cursor.execute(*REBUILD_SQL[layer.low_zoom](layer))
    return True


def derived_layers() -> list[TileLayer]:
    return [layer for layer in LAYERS if layer.low_zoom in REBUILD_SQL]


def stale_layers(layer_ids: list[str], versions: dict[str, int], built: dict[str, int]) -> list[str]:
    """The layers among layer_ids whose derived table was built from an older version."""
    return [i for i in layer_ids if versions.get(i, 0) != built.get(i)]


def ensure_fresh(layer_ids: list[str], versions: dict[str, int], built: dict[str, int]) -> bool:
    """Rebuild the derived tables a tile just read if they were behind. True if any was."""
    from tiles.registry import get

    stale = stale_layers(layer_ids, versions, built)
    for layer_id in stale:
        layer = get(layer_id)
        if layer is not None:
            rebuild(layer)
    return bool(stale)
