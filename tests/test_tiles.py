"""Vector tiles: real tiles from the full fixtures, decoded and compared with SQL counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.tiles_support import (  # noqa: F401  (autouse fixtures)
    CENTRE,
    counts,
    decode,
    derived_tables,
    fresh_cache,
    login_as,
    refresh_derived_tables,
    sql_ids,
    sql_points_inside,
    tile_of,
)
from tiles import registry

pytestmark = pytest.mark.django_db

Z14 = tile_of(*CENTRE, 14)
ALL_LAYERS = ",".join(layer.id for layer in registry.LAYERS)


@pytest.fixture
def commander(client):  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    return client


def path(layers: str, z: int | str, x: int | str, y: int | str, query: str = "") -> str:
    return f"/tiles/{layers}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else "")


@pytest.mark.parametrize("z", [12, 14, 16])
def test_camera_tile_holds_exactly_the_cameras_of_the_buffered_tile(commander, z) -> None:  # type: ignore[no-untyped-def]
    zxy = tile_of(*CENTRE, z)
    response = commander.get(path("cameras", *zxy))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    features = decode(response)["cameras"]["features"]
    assert features, "the centre of Beijing has cameras"
    ids = {f["id"] for f in features}
    assert ids == sql_ids("geo_camera", *zxy)
    # Independently of ST_AsMVTGeom: every camera within the 64-unit buffer, none beyond it (give
    # or take the half unit that snapping to the 4096 grid moves a point).
    assert sql_ids("geo_camera", *zxy, margin=63.5 / 4096, exact=False) <= ids
    assert ids <= sql_ids("geo_camera", *zxy, margin=64.5 / 4096, exact=False)
    assert decode(response)["cameras"]["extent"] == 4096


def test_features_carry_the_registry_properties_and_ids(commander) -> None:  # type: ignore[no-untyped-def]
    tile = decode(commander.get(path("cameras,hotspots", *Z14)))
    for layer_id, table in [("cameras", "geo_camera"), ("hotspots", "geo_hotspotpoint")]:
        layer = registry.BY_ID[layer_id]
        feature = tile[layer_id]["features"][0]
        columns = ", ".join(f'"{column}"' for _, column in layer.properties)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [feature["id"]])  # noqa: S608 (registry)
            row = cursor.fetchone()
        expected = {name: value for (name, _), value in zip(layer.properties, row, strict=True) if value is not None}
        assert feature["properties"] == expected, layer_id
    # A camera's tile feature is what the map draws; its record (name, stream...) is the OGC API's.
    assert set(tile["cameras"]["features"][0]["properties"]) == {"status", "source"}


def test_polygon_layers_use_their_codes_as_feature_ids(commander) -> None:  # type: ignore[no-untyped-def]
    tile = decode(commander.get(path("districts,streets,gridcells", *Z14)))
    for layer_id, table in (("districts", "geo_district"), ("streets", "geo_street"), ("gridcells", "geo_gridcell")):
        ids = {f["id"] for f in tile[layer_id]["features"]}
        assert ids == sql_ids(table, *Z14, id_sql="t.code::bigint"), layer_id
        assert all(str(f["id"]) == f["properties"]["code"] for f in tile[layer_id]["features"])


def test_composite_tile_has_every_layer_as_in_its_own_tile(commander) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from command.models import Task

    # A live dispatch task in the tile (the test's transaction removes it).
    now = timezone.now()
    Task.objects.create(number="T-TILE-1", state="reported", source="patrol", category_id="E0501",
                        geom=Point(*CENTRE, srid=4490), district_id="110101", created_at=now, updated_at=now)
    composite = decode(commander.get(path(ALL_LAYERS, *Z14)))
    assert set(composite) == {layer.id for layer in registry.LAYERS}
    for layer in registry.LAYERS:
        single = decode(commander.get(path(layer.id, *Z14)))
        assert counts(composite)[layer.id] == counts(single)[layer.id] > 0, layer.id


def test_composite_tile_is_one_query(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    url = client.get(f"/tiles/{ALL_LAYERS}.json").json()["tiles"][0].removeprefix("http://testserver")
    client.logout()  # the signed token alone authenticates: no session lookup
    # ... and its user's state is looked up once per ONEMAP_TILE_USER_CHECK_S, not per tile.
    assert client.get(url.format(z=Z14[0], x=Z14[1] + 1, y=Z14[2])).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url.format(z=Z14[0], x=Z14[1], y=Z14[2]))
    assert response.status_code == 200
    assert len(queries) == 1, [q["sql"][:80] for q in queries]


@pytest.mark.parametrize(("query", "where", "params"), [
    ("source=police_shared", "t.source = %s", ["police_shared"]),
    ("status=offline,fault", "t.status IN (%s, %s)", ["offline", "fault"]),
    ("district=110101&source=self_built", "t.district_id = %s AND t.source = %s", ["110101", "self_built"]),
])
def test_filters_give_the_sql_subset(commander, query, where, params) -> None:  # type: ignore[no-untyped-def]
    features = decode(commander.get(path("cameras", *Z14, query)))["cameras"]["features"]
    expected = sql_ids("geo_camera", *Z14, where, params)
    assert expected and {f["id"] for f in features} == expected
    assert len(expected) < len(sql_ids("geo_camera", *Z14))


@pytest.mark.parametrize(("url", "status"), [
    (path("cameras", 14, 1, 1, "source=satellite"), 400),
    (path("cameras", 14, 1, 1, "district=999999"), 400),
    (path("cameras", 14, 1, 1, "category=garbage"), 400),  # not a camera filter
    (path("cameras,hotspots", 14, 1, 1, "status=open"), 400),  # open is no camera status
    (path("cameras", "a", 1, 1), 400),
    (path("cameras", 14, "1.5", 1), 400),
    (path("cameras", 14, 1, "-1"), 400),
    (path("cameras", 14, 1, "99999999999"), 400),
    (path("cameras", 3, 8, 0), 404),
    (path("cameras", 3, 0, 8), 404),
    (path("cameras", 23, 0, 0), 404),
    (path("nosuchlayer", 1, 0, 0), 404),
    (path("cameras,nosuchlayer", 1, 0, 0), 404),
    (path("cameras,cameras", 1, 0, 0), 400),
    ("/tiles/cameras/1/0.mvt", 404),
    ("/tiles/nosuchlayer.json", 404),
])
def test_bad_requests_are_problems(commander, url, status) -> None:  # type: ignore[no-untyped-def]
    response = commander.get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status and response.json()["detail"]


def test_valid_status_for_both_layers_filters_both(commander) -> None:  # type: ignore[no-untyped-def]
    # hotspots are open/closed, cameras online/offline/fault: a shared parameter must suit both.
    assert commander.get(path("hotspots", *Z14, "status=open")).status_code == 200


def test_low_zoom_camera_tile_is_clusters_summing_to_the_cameras(commander) -> None:  # type: ignore[no-untyped-def]
    z8 = tile_of(*CENTRE, 8)
    response = commander.get(path("cameras", *z8), HTTP_ACCEPT_ENCODING="gzip")
    assert len(response.content) <= 100_000
    features = decode(response)["cameras"]["features"]
    assert all(f["properties"]["cluster"] is True for f in features)
    assert sum(f["properties"]["count"] for f in features) == sql_points_inside("geo_camera", *z8)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT (cell_x, cell_y)) FROM tiles_pointcluster WHERE layer = 'cameras' "
                       "AND zoom = 8 AND cell_x BETWEEN %s AND %s AND cell_y BETWEEN %s AND %s",
                       [z8[1] * 32, z8[1] * 32 + 31, z8[2] * 32, z8[2] * 32 + 31])
        assert len(features) == cursor.fetchone()[0] < 141_800 // 50


def test_low_zoom_clusters_follow_filters(commander) -> None:  # type: ignore[no-untyped-def]
    z10 = tile_of(*CENTRE, 10)
    features = decode(commander.get(path("cameras", *z10, "source=self_built")))["cameras"]["features"]
    assert sum(f["properties"]["count"] for f in features) == sql_points_inside(
        "geo_camera", *z10, "t.source = %s", ["self_built"])


def test_low_zoom_grid_cells_are_simplified_polygons(commander) -> None:  # type: ignore[no-untyped-def]
    z11 = tile_of(*CENTRE, 11)
    features = decode(commander.get(path("gridcells", *z11)))["gridcells"]["features"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tiles_generalisedpolygon WHERE layer = 'gridcells' AND zoom = 11 "
                       "AND ST_AsMVTGeom(geom_3857, ST_TileEnvelope(%s, %s, %s), 4096, 64, true) IS NOT NULL",
                       list(z11))
        assert len(features) == cursor.fetchone()[0] > 0
    assert "gridcells" not in decode(commander.get(path("gridcells", *tile_of(*CENTRE, 9))))


def test_jurisdiction_narrows_officers(client) -> None:  # type: ignore[no-untyped-def]
    z12 = tile_of(*CENTRE, 12)
    login_as(client, "dongcheng")
    features = decode(client.get(path("officers,vehicles", *z12)))
    assert features["officers"]["features"]
    assert {f["properties"]["district"] for f in features["officers"]["features"]} == {"110101"}
    assert {f["id"] for f in features["officers"]["features"]} == sql_ids(
        "geo_officer", *z12, "t.district_id = %s", ["110101"])
    assert {f["properties"]["district"] for f in features.get("vehicles", {"features": []})["features"]} <= {"110101"}
    # The commander sees more in the same tile: Xicheng's officers too.
    client.logout()
    login_as(client, "commander")
    everyone = decode(client.get(path("officers", *z12)))["officers"]["features"]
    assert len(everyone) == len(sql_ids("geo_officer", *z12)) > len(features["officers"]["features"])


def test_a_tile_in_another_district_is_empty_for_dongcheng(client) -> None:  # type: ignore[no-untyped-def]
    yanqing = tile_of(115.975, 40.456, 12)  # Yanqing (延庆), far from Dongcheng
    login_as(client, "dongcheng")
    response = client.get(path("officers", *yanqing))
    assert response.status_code == 200 and decode(response) == {}
    client.logout()
    login_as(client, "commander")
    assert decode(client.get(path("officers", *yanqing)))["officers"]["features"]


def test_street_dispatcher_sees_only_their_street(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "donghuamen")
    features = decode(client.get(path("officers,hotspots", *Z14)))
    streets = {f["properties"]["street"] for layer in features.values() for f in layer["features"]}
    assert streets == {"110101001"}


def test_tile_statement_is_prepared_once_and_planned_generically() -> None:
    """Django opens connections with prepare_threshold=None, under which psycopg ignores
    prepare=True; and bound layer-id arrays made PostgreSQL's generic plan look dearer than a
    custom one. Either way every tile was parsed and planned again (~0.4 ms at z14)."""
    from tiles.service import run_tile_statement
    from tiles.sql import LayerQuery, TileQuery

    camera = registry.get("cameras")
    assert camera is not None
    for dx in range(8):
        run_tile_statement(TileQuery((LayerQuery(camera),), 14, Z14[1] + dx, Z14[2]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE '%%ST_AsMVT(q, ''cameras''%%' AND statement NOT LIKE '%%hotspots%%'")
        plans = cursor.fetchall()
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert generic >= 2 and custom <= 5


@pytest.mark.django_db
def test_tile_boxes_are_st_tileenvelope_to_the_last_bit() -> None:
    """The statement binds the tile's boxes (tiles.sql.tile_box) instead of computing them with
    ST_TileEnvelope: the same doubles at every zoom, at the world's edges, with and without margin."""
    import random

    from tiles.sql import tile_box

    rng = random.Random(7)
    cases = []
    for z in range(23):
        n = 1 << z
        for x, y in [(0, 0), (n - 1, n - 1), (0, n - 1), (rng.randrange(n), rng.randrange(n))]:
            cases += [(z, x, y, 0.0), (z, x, y, 65 / 4096), (z, x, y, 0.75)]
    with connection.cursor() as cursor:
        for z, x, y, margin in cases:
            cursor.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), ST_XMin(b), ST_YMin(b), ST_XMax(b), "
                           "ST_YMax(b) FROM (SELECT ST_TileEnvelope(%s, %s, %s, margin => %s)::box2d AS e, "
                           "%s::box2d AS b) q", [z, x, y, margin, tile_box(z, x, y, margin)])
            row = cursor.fetchone()
            assert row[:4] == row[4:], (z, x, y, margin)
