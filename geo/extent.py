"""The map's extent, computed from the data: the districts' union plus the buffer joint work needs.

TileJSON, style.json and the OGC collections publish it. A fixed box cut the map: Miyun reaches
117.508 °E, the old box stopped at 117.5, and a map client requests no tile outside a source's
bounds, so the easternmost camera vanished from z16 on.

The buffer: joint enforcement along the city border works some way into neighbouring Hebei and
Tianjin; the position ingest accepts fixes up to about 50 km outside Beijing for the same reason
(realtime.conf SERVICE_AREA), and the map must be able to show them.

Cached per process and per districts' version (tiles.models.LayerVersion, bumped by a trigger on
every write to the districts table, in the writer's transaction): one indexed one-row read per
call, and the extent itself is computed again only after the boundaries change."""

from __future__ import annotations

import math
import threading

from django.db import connection

from geo.models import District

JOINT_WORK_BUFFER_KM = 50.0
KM_PER_DEGREE = 111.32  # of latitude; of longitude at the equator
# What Web Mercator (and so a tile pyramid) can show; also the extent when no district is loaded.
WORLD = (-180.0, -85.051129, 180.0, 85.051129)
DECIMALS = 6  # rounded outwards: the extent only ever grows by the rounding

_lock = threading.Lock()
_cached: tuple[int | None, tuple[float, float, float, float]] | None = None


def districts_version() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version FROM tiles_layerversion WHERE layer = %s", ["districts"])
        row = cursor.fetchone()
    return int(row[0]) if row else None


def buffered(west: float, south: float, east: float, north: float, km: float) -> tuple[float, float, float, float]:
    """The box grown by `km` on every side; a degree of longitude is shortest at the box's
    poleward edge, so that edge sets the longitude margin (the box then holds the whole buffer)."""
    dlat = km / KM_PER_DEGREE
    poleward = min(89.0, max(abs(south), abs(north)) + dlat)
    dlon = km / (KM_PER_DEGREE * math.cos(math.radians(poleward)))
    scale = 10**DECIMALS
    box = (math.floor((west - dlon) * scale) / scale, math.floor((south - dlat) * scale) / scale,
           math.ceil((east + dlon) * scale) / scale, math.ceil((north + dlat) * scale) / scale)
    return (max(box[0], WORLD[0]), max(box[1], WORLD[1]), min(box[2], WORLD[2]), min(box[3], WORLD[3]))


def compute() -> tuple[float, float, float, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "  # noqa: S608 (table name from the model)
            f"FROM (SELECT ST_Extent(geom) AS e FROM {District._meta.db_table}) s")
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return WORLD
    west, south, east, north = (float(v) for v in row)
    return buffered(west, south, east, north, JOINT_WORK_BUFFER_KM)


def map_extent() -> list[float]:
    """[west, south, east, north] in CGCS2000 / CRS84 degrees."""
    global _cached
    version = districts_version()
    cached = _cached
    if cached is None or cached[0] != version or version is None:
        cached = (version, compute())
        with _lock:
            _cached = cached
    return list(cached[1])
