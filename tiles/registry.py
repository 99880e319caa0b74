"""The layers the tile server serves, declared in one place (as geo.ogc.registry declares the OGC
collections, whose tables, filters and scopes these entries reuse).

Every SQL identifier in a tile query comes from here, never from a request: the table, the
geometry, the feature id, the property columns and the columns a query parameter may filter.
Request values are always bound parameters.

A layer is drawn from its source rows at zooms above GENERALISE_MAX_ZOOM. At and below it, a
layer declares how it is generalised: `clusters` (a precomputed per-zoom count cube, for the
141,800 cameras and the hotspots) or `simplified` (precomputed per-zoom polygons, for the grid
cells); a layer that declares neither is drawn raw at every zoom it has.

`live` layers (officers and vehicles at their latest position) change with every GPS fix: they
have no version and their tiles may be reused for a few seconds only (tiles/README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from geo.ogc import registry as ogc
from geo.ogc.registry import JURISDICTION, PUBLIC, Filter

# At and below this zoom, clustered and simplified layers read their precomputed tables.
GENERALISE_MAX_ZOOM = 11
MAX_ZOOM = 22  # the deepest tile the server answers; layers stop at their own maxzoom
EXTENT = 4096
BUFFER = 64

RAW = "raw"
CLUSTERS = "clusters"
SIMPLIFIED = "simplified"


@dataclass(frozen=True)
class TileLayer:
    id: str
    title: str
    table: str
    geometry_type: str  # Point | MultiPolygon: what the raw layer holds
    id_sql: str  # a bigint expression over the source row (alias t): the MVT feature id
    properties: tuple[tuple[str, str], ...]  # (name in the tile, source column)
    minzoom: int = 0
    maxzoom: int = 16
    key_column: str = "id"  # the source primary key (generalised polygons point back to it)
    geometry_column: str = "geom_3857"
    scope: str = PUBLIC
    filters: tuple[Filter, ...] = ()
    low_zoom: str = RAW  # RAW | CLUSTERS | SIMPLIFIED, at zooms <= GENERALISE_MAX_ZOOM
    live: bool = False
    description: str = ""

    def filter_for(self, param: str) -> Filter | None:
        return next((f for f in self.filters if f.param == param), None)

    def generalised_at(self, z: int) -> str:
        return self.low_zoom if z <= GENERALISE_MAX_ZOOM else RAW

    @property
    def cluster_dimensions(self) -> tuple[str, ...]:
        """The columns a cluster cube splits on: whatever a filter or the jurisdiction narrows by.
        Each must be a column of tiles_pointcluster."""
        columns = [f.column for f in self.filters]
        if self.scope == JURISDICTION:
            columns += ["district_id", "street_id"]
        return tuple(dict.fromkeys(columns))

    @property
    def versioned(self) -> bool:
        return not self.live


def from_collection(collection_id: str, properties: tuple[str, ...], **entry: object) -> TileLayer:
    """A tile layer over an OGC collection: same table, scope and filters; a subset of its
    properties (a tile carries what the map draws or labels; the full record is one OGC call away)."""
    collection = ogc.get(collection_id)
    assert collection is not None, collection_id
    columns = dict(collection.properties)
    entry.setdefault("filters", collection.filters)
    return TileLayer(
        id=str(entry.pop("id", collection.id)), title=collection.title, table=collection.table,
        geometry_type=collection.geometry_type, scope=collection.scope,
        properties=tuple((name, columns[name]) for name in properties),
        key_column=collection.id_column, description=collection.description,
        **entry,  # type: ignore[arg-type]
    )


def code_id(column: str = "code") -> str:
    # Division and grid codes are all digits (6 to 15 of them): the code itself is the feature id.
    return f't."{column}"::bigint'


def ogc_filters(collection_id: str, *params: str) -> tuple[Filter, ...]:
    collection = ogc.get(collection_id)
    assert collection is not None, collection_id
    found = tuple(collection.filter_for(p) for p in params)
    assert all(found), (collection_id, params)
    return found  # type: ignore[return-value]


ROW_ID = 't."id"'

LAYERS: tuple[TileLayer, ...] = (
    from_collection("districts", ("code", "name", "name_en"), id_sql=code_id()),
    from_collection("streets", ("code", "name", "kind", "district"), id_sql=code_id(), minzoom=9),
    from_collection("gridcells", ("code", "community", "street", "district"), id_sql=code_id(),
                    minzoom=10, low_zoom=SIMPLIFIED),
    from_collection("hotspots", ("name", "category", "status", "district", "street"), id_sql=ROW_ID,
                    low_zoom=CLUSTERS),
    # What the map draws: the status (fill) and the source (outline). The full record (name, code,
    # heading, stream...) is what a click fetches from the OGC API (frontend/static/frontend/map_app.js). Carrying
    # five more columns made a z14 camera tile ~3x the bytes and the MVT encoder's work per tile
    # in PostgreSQL about double, for data no map layer reads.
    from_collection("cameras", ("status", "source"),
                    id_sql=ROW_ID, filters=ogc_filters("cameras", "source", "status", "district"), low_zoom=CLUSTERS),
    from_collection("officers", ("call_sign", "name", "unit", "district", "street", "located_at", "heading"),
                    id_sql=ROW_ID, live=True),
    from_collection("vehicles", ("call_sign", "plate", "kind", "unit", "district", "street", "located_at",
                                 "heading"), id_sql=ROW_ID, live=True),
    # Dispatch tasks change with every action: a live layer, like the units.
    from_collection("tasks", ("number", "state", "category", "overdue", "escalation", "district", "street"),
                    id_sql=ROW_ID, minzoom=9, live=True),
)

BY_ID: dict[str, TileLayer] = {layer.id: layer for layer in LAYERS}
# The properties of a cluster feature at low zoom (instead of the layer's own).
CLUSTER_FIELDS = {"count": "Number", "cluster": "Boolean"}


def get(layer_id: str) -> TileLayer | None:
    return BY_ID.get(layer_id)


