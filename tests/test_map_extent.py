"""The map's extent comes from the data (geo.extent): TileJSON, style.json and the OGC collections
publish the districts' extent plus the joint-work buffer, and every camera and hotspot is drawn at
the deepest zoom. The fixed box [115.4, 39.4, 117.5, 41.1] cut Miyun at 117.5 °E: a map client
requests no tile outside a source's bounds, so camera 133792 (117.5054 °E) vanished from z16 on."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from geo import extent
from geo.models import District
from tests.tiles_support import decode, derived_tables, fresh_cache, login_as, tile_of  # noqa: F401  (autouse fixtures)

pytestmark = pytest.mark.django_db
# 50 km in degrees: of latitude anywhere, of longitude at 41.5 °N (the buffered north edge).
BUFFER_LAT = 50 / 111.32
BUFFER_LON_AT_41_5 = 50 / (111.32 * math.cos(math.radians(41.5)))


def sql_extent(table: str) -> tuple[float, float, float, float]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                       f"(SELECT ST_Extent(geom) AS e FROM {table}) s")
        return cursor.fetchone()


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """A z/x/y tile's lon/lat box."""
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def requested(bounds: list[float], tile: tuple[int, int, int]) -> bool:
    """Whether a map client asks for this tile: it does for tiles that meet the source's bounds."""
    west, south, east, north = tile_bounds(*tile)
    return west < bounds[2] and east > bounds[0] and south < bounds[3] and north > bounds[1]


def test_extent_is_the_districts_plus_the_joint_work_buffer() -> None:
    west, south, east, north = sql_extent("geo_district")
    bounds = extent.map_extent()
    assert bounds[0] <= west - BUFFER_LON_AT_41_5 and bounds[2] >= east + BUFFER_LON_AT_41_5
    assert bounds[1] <= south - BUFFER_LAT and bounds[3] >= north + BUFFER_LAT
    # ... and not much more (the north edge sits a little beyond 41.5 °N, where 50 km is more longitude).
    assert bounds[2] - east < BUFFER_LON_AT_41_5 * 1.01 and bounds[3] - north < BUFFER_LAT + 1e-5
    assert bounds[2] > 117.5081  # Miyun's east edge, beyond the old fixed box


def test_extent_follows_the_districts_and_is_cached_per_version() -> None:
    before = extent.map_extent()
    with CaptureQueriesContext(connection) as queries:
        assert extent.map_extent() == before
    assert len(queries) == 1, "a cached extent costs one read of the districts' version"
    from tests.test_ogc import square

    District.objects.create(code="110197", name="远方", name_en="Far", geom=square(120, 45, 0.1))
    grown = extent.map_extent()  # the trigger bumped the districts' version in this transaction
    assert grown[2] > 120.1 and grown[3] > 45.1 and grown[0] <= before[0]


@pytest.mark.parametrize("layer", ["cameras", "hotspots"])
def test_every_point_is_drawn_at_the_deepest_zoom(client, layer: str) -> None:
    table = {"cameras": "geo_camera", "hotspots": "geo_hotspotpoint"}[layer]
    login_as(client, "commander")
    tilejson = client.get(f"/tiles/{layer}.json").json()
    style = client.get("/tiles/style.json").json()
    bounds, deepest = tilejson["bounds"], tilejson["maxzoom"]
    assert deepest == 16 and style["sources"]["onemap"]["bounds"] == bounds == extent.map_extent()
    west, south, east, north = sql_extent(table)
    assert bounds[0] < west and bounds[1] < south and bounds[2] > east and bounds[3] > north
    template = tilejson["tiles"][0].removeprefix("http://testserver")
    # The outermost point in each direction: its z16 tile is one the map requests, and the real
    # tile (decoded MVT) holds it.
    for order in ("ST_X(geom) DESC", "ST_X(geom)", "ST_Y(geom) DESC", "ST_Y(geom)"):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, ST_X(geom), ST_Y(geom) FROM {table} ORDER BY {order}, id LIMIT 1")
            point_id, lon, lat = cursor.fetchone()
        z, x, y = tile_of(lon, lat, deepest)
        assert requested(bounds, (z, x, y)), (layer, point_id, order)
        url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
        features = decode(client.get(url))[layer]["features"]
        assert point_id in {f["id"] for f in features}, (layer, point_id, order)


def test_the_old_box_would_have_lost_camera_133792() -> None:
    """The case of the issue, kept as a fact about the fixtures: with the old fixed box the
    easternmost camera's z16 tile was never requested; with the extent from the data it is."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, ST_X(geom), ST_Y(geom) FROM geo_camera ORDER BY ST_X(geom) DESC LIMIT 1")
        camera_id, lon, lat = cursor.fetchone()
    tile = tile_of(lon, lat, 16)
    assert camera_id == 133792
    assert not requested([115.4, 39.4, 117.5, 41.1], tile)
    assert requested(extent.map_extent(), tile)
