"""The OGC API - Features at /ogc/: shape, paging, CRS, errors, authentication, jurisdiction,
query budget (GDAL through a live server: tests/test_ogc_gdal.py).

The tests build their own small world (districts 110198 and 110199, far from Beijing at 100°E 30°N)
so every count is exact whether or not the full fixtures are loaded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken, Profile, Role
from geo.models import Camera, District, EnforcementUnit, HotspotPoint, Officer, Street, Vehicle
from geo.ogc import registry

PREFIX = "ogct"
DISTRICTS = ("110198", "110199")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
# 30 cameras on a 0.01° grid from (100.00, 30.00): 6 columns east, 5 rows north.
CAMERA_COLUMNS, CAMERA_ROWS = 6, 5
# A comma inside a tag: the published text must keep the two tags apart.
TAGS = ["国庆", "夜间,占道"]


# -- the test world --------------------------------------------------------------------------------

def square(lon: float, lat: float, size: float) -> MultiPolygon:
    ring = ((lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat))
    return MultiPolygon(Polygon(ring), srid=4490)


def destroy_world() -> None:
    get_user_model().objects.filter(username__startswith=PREFIX).delete()
    for model in (Officer, Vehicle, Camera, HotspotPoint):
        model.objects.filter(district_id__in=DISTRICTS).delete()
    EnforcementUnit.objects.filter(code__startswith=PREFIX.upper()).delete()
    Street.objects.filter(district_id__in=DISTRICTS).delete()
    District.objects.filter(code__in=DISTRICTS).delete()


def build_world() -> SimpleNamespace:
    destroy_world()
    d98 = District.objects.create(code="110198", name="测试东区", name_en="Test East", geom=square(100, 30, 0.1))
    d99 = District.objects.create(code="110199", name="测试西区", name_en="Test West", geom=square(99.9, 30, 0.1))
    s1 = Street.objects.create(code="110198001", name="一街", kind="street", district=d98, geom=square(100, 30, 0.05))
    s2 = Street.objects.create(code="110198002", name="二街", kind="town", district=d98, geom=square(100.05, 30, 0.05))
    s9 = Street.objects.create(code="110199001", name="九街", kind="street", district=d99, geom=square(99.9, 30, 0.1))
    unit = EnforcementUnit.objects.create(code="OGCT1", name="测试大队", district=d98)

    cameras = [
        Camera(code=f"OGCT-C{i:02d}{j:02d}", name=f"cam {i},{j}", source="self_built" if (i + j) % 2 else "police_shared",
               owner_unit="测试大队", geom=Point(100 + i * 0.01, 30 + j * 0.01, srid=4490), district=d98,
               street=s1 if i < 5 else s2)
        for i in range(CAMERA_COLUMNS) for j in range(CAMERA_ROWS)
    ]
    Camera.objects.bulk_create(cameras)

    now = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)

    def officer(n: int, district: District, street: Street | None, where: tuple[float, float] | None) -> Officer:
        return Officer.objects.create(
            unit=unit, district=district, street=street, call_sign=f"OGCT-O{n}", device_id=f"ogct-dev-o{n}",
            name=f"队员{n}", badge=f"OGCT{n}", geom=Point(*where, srid=4490) if where else None,
            position_at=now if where else None)

    officers = SimpleNamespace(
        s1_a=officer(1, d98, s1, (100.01, 30.01)),
        s1_b=officer(2, d98, s1, (100.02, 30.02)),
        s1_nowhere=officer(3, d98, s1, None),  # never reported: null geometry
        s2_a=officer(4, d98, s2, (100.06, 30.01)),
        s2_b=officer(5, d98, s2, (100.07, 30.02)),
        d99_a=officer(6, d99, s9, (99.95, 30.05)),
        d99_b=officer(7, d99, s9, (99.96, 30.05)),
    )
    Vehicle.objects.create(unit=unit, district=d98, street=s1, call_sign="OGCT-V1", device_id="ogct-dev-v1",
                           plate="京OGCT1", kind="patrol_car", geom=Point(100.01, 30.03, srid=4490), position_at=now)
    HotspotPoint.objects.create(category="street_vending", name="桥下摊点", opened_at=now, district=d98, street=s1,
                                geom=Point(100.015, 30.015, srid=4490), tags=TAGS)

    users = get_user_model().objects

    def account(name: str, role: str | None, district: District | None = None, street: Street | None = None):  # type: ignore[no-untyped-def]
        user = users.create_user(f"{PREFIX}_{name}")  # no password: hashing one costs ~0.5 s
        if role:
            Profile.objects.create(user=user, role=role, district=district, street=street)
        return user

    return SimpleNamespace(
        d98=d98, d99=d99, s1=s1, s2=s2, officers=officers,
        city=account("city", Role.CITY_COMMANDER),
        district=account("district", Role.DISTRICT_DISPATCHER, d98),
        street=account("street", Role.STREET_DISPATCHER, d98, s1),
        nobody=account("nobody", None),
    )


@pytest.fixture
def world(db) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    return build_world()


def bearer(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    _, raw = ApiToken.issue(user)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def get(client, world):  # type: ignore[no-untyped-def]
    """GET as the city commander with a bearer token; returns the response."""
    headers = bearer(world.city)

    def do(path: str, user=None, **params):  # type: ignore[no-untyped-def]
        return client.get(path, params, **(bearer(user) if user else headers))

    return do


def sql_count(table: str, where: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
        return cursor.fetchone()[0]


def ids(body: dict) -> list:
    return [f["id"] for f in body["features"]]


# -- metadata --------------------------------------------------------------------------------------

def test_landing_page_links_conformance_and_data(get):
    response = get("/ogc/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    rels = {link["rel"]: link["href"] for link in response.json()["links"]}
    assert rels["self"].endswith("/ogc/")
    assert rels["conformance"].endswith("/ogc/conformance")
    assert rels["data"].endswith("/ogc/collections")


def test_landing_page_links_the_api_definition(get, settings):
    links = {link["rel"]: link for link in get("/ogc/").json()["links"]}
    desc, doc = links["service-desc"], links["service-doc"]
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0" and doc["type"] == "text/html"
    response = get(urlsplit(desc["href"]).path)
    assert response.status_code == 200 and response["Content-Type"] == desc["type"]
    api = response.json()
    assert api["openapi"].startswith("3.0.") and api["servers"][0]["url"].endswith("/ogc")
    # What GDAL >= 3.8 reads for its page size: the items path of each collection, its `limit`
    # parameter by local $ref, and that parameter's default and maximum.
    limit = api["components"]["parameters"]["limit"]["schema"]
    assert limit == {"type": "integer", "minimum": 1, "maximum": settings.OGC_MAX_LIMIT, "default": 10}
    for collection in registry.COLLECTIONS:
        operation = api["paths"][f"/collections/{collection.id}/items"]["get"]
        parameters = operation["parameters"]
        assert {"$ref": "#/components/parameters/limit"} in parameters
        assert {"$ref": "#/components/parameters/cursor"} in parameters
        named = {p["name"]: p for p in parameters if "name" in p}
        assert set(named) == {f.param for f in collection.filters}
        for flt in collection.filters:
            item = named[flt.param]["schema"]["items"]
            assert item.get("enum", []) == list(flt.choices)
        assert f"/collections/{collection.id}/items/{{featureId}}" in api["paths"]
        assert {"429", "503"} <= set(operation["responses"])
    html = get(urlsplit(doc["href"]).path)
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert b"/ogc/collections/cameras/items" in html.content and b"cursor" in html.content


def test_conformance_declares_core_geojson_and_crs(get):
    conforms = get("/ogc/conformance", f="json").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms


@pytest.mark.parametrize("path", ["/ogc/collections", "/ogc/collections/"])
def test_collections_list_with_or_without_trailing_slash(get, path):
    response = get(path)
    assert response.status_code == 200
    listed = {c["id"]: c for c in response.json()["collections"]}
    assert set(listed) == {"districts", "streets", "communities", "gridcells", "hotspots", "cameras", "officers",
                           "vehicles", "tasks"}
    cameras = listed["cameras"]
    assert cameras["itemType"] == "feature"
    assert cameras["crs"] == [CRS84, EPSG_4490] and cameras["storageCrs"] == EPSG_4490
    west, south, east, north = cameras["extent"]["spatial"]["bbox"][0]
    assert west < 99.9 and south < 30  # the test world far from Beijing is in the data, so in the extent
    assert any(link["rel"] == "items" and link["type"] == "application/geo+json" for link in cameras["links"])


def test_one_collection(get):
    body = get("/ogc/collections/officers").json()
    assert body["id"] == "officers" and body["links"][0]["rel"] == "self"


# -- items -----------------------------------------------------------------------------------------

def test_items_are_a_geojson_feature_collection(get):
    response = get("/ogc/collections/cameras/items", district="110198", limit=3)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    assert response["Content-Crs"] == f"<{CRS84}>"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == CAMERA_COLUMNS * CAMERA_ROWS and body["numberReturned"] == 3
    assert body["timeStamp"].endswith("Z")
    first = body["features"][0]
    assert first["type"] == "Feature" and isinstance(first["id"], int)
    assert first["geometry"] == {"type": "Point", "coordinates": [100, 30]}
    assert first["properties"]["code"] == "OGCT-C0000" and first["properties"]["district"] == "110198"
    assert "geom_3857" not in first["properties"]


def test_bbox_matches_the_sql_count(get):
    bbox = [100.0, 30.0, 100.025, 30.025]
    body = get("/ogc/collections/cameras/items", bbox=",".join(map(str, bbox)), limit=100).json()
    expected = sql_count("geo_camera", "geom && ST_MakeEnvelope(%s,%s,%s,%s,4490)", bbox)
    assert body["numberMatched"] == body["numberReturned"] == expected == 9
    for feature in body["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        assert bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]


def test_six_number_bbox_ignores_heights(get):
    body = get("/ogc/collections/cameras/items", bbox="100,30,-5,100.025,30.025,50").json()
    assert body["numberMatched"] == 9


def test_bbox_in_epsg_4490_is_lat_lon(get):
    body = get("/ogc/collections/cameras/items", bbox="30,100,30.025,100.025", **{"bbox-crs": "EPSG:4490"}).json()
    assert body["numberMatched"] == 9


def follow(get, url: str) -> dict:  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    return get(parts.path, **dict(parse_qsl(parts.query))).json()


def rel(body: dict, name: str) -> str | None:
    return next((link["href"] for link in body["links"] if link["rel"] == name), None)


def test_next_links_continue_from_the_last_id(get):
    query = {"district": "110198", "source": "self_built", "limit": 4}
    first = get("/ogc/collections/cameras/items", **query).json()
    total = Camera.objects.filter(district_id="110198", source="self_built").count()
    assert first["numberMatched"] == total == 15
    links = {link["rel"]: link for link in first["links"]}
    assert "prev" not in links and links["next"]["type"] == "application/geo+json"
    next_query = dict(parse_qsl(urlsplit(links["next"]["href"]).query))
    # Keyset, not OFFSET: the next page starts after the last id sent; other parameters are kept.
    assert next_query["cursor"] == str(ids(first)[-1]) and "offset" not in next_query
    assert next_query["source"] == "self_built" and next_query["district"] == "110198"
    # Whoever follows next links reads everything: each next page asks for twice as many.
    assert next_query["limit"] == "8"

    seen, url, sizes = ids(first), rel(first, "next"), [len(ids(first))]
    while url:
        page = follow(get, url)
        assert "numberMatched" not in page  # a cursor page does not count the whole match again
        seen += ids(page)
        sizes.append(page["numberReturned"])
        url = rel(page, "next")
    assert sizes == [4, 8, 3] and len(seen) == len(set(seen)) == total and seen == sorted(seen)


def test_offset_still_pages_and_its_next_link_is_a_cursor(get):
    query = {"district": "110198", "source": "self_built", "limit": 4}
    all_ids = ids(get("/ogc/collections/cameras/items", district="110198", source="self_built", limit=100).json())
    page = get("/ogc/collections/cameras/items", offset=4, **query).json()
    assert ids(page) == all_ids[4:8] and page["numberMatched"] == 15
    assert "offset=0" in rel(page, "prev")
    following = follow(get, rel(page, "next"))
    assert ids(following) == all_ids[8:15]


def test_cursor_page_matches_the_same_rows_as_offset(get):
    ordered = ids(get("/ogc/collections/cameras/items", district="110198", limit=30).json())
    page = get("/ogc/collections/cameras/items", district="110198", limit=5, cursor=ordered[9]).json()
    assert ids(page) == ordered[10:15]
    streets = ids(get("/ogc/collections/streets/items", district="110198", cursor="110198001").json())
    assert streets == ["110198002"]  # text ids page the same way


def test_offset_past_the_end_is_an_empty_page(get):
    body = get("/ogc/collections/cameras/items", district="110198", offset=1000).json()
    assert body["numberReturned"] == 0 and body["numberMatched"] == 30 and body["features"] == []


def test_comma_separated_filter_means_any_of(get):
    body = get("/ogc/collections/streets/items", district="110198", kind="street,town").json()
    assert sorted(ids(body)) == ["110198001", "110198002"]


def test_feature_by_id(get, world):
    officer = world.officers.s1_a
    response = get(f"/ogc/collections/officers/items/{officer.pk}")
    assert response.status_code == 200 and response["Content-Type"] == "application/geo+json"
    body = response.json()
    assert body["id"] == officer.pk and body["properties"]["call_sign"] == "OGCT-O1"
    assert body["geometry"]["coordinates"] == [100.01, 30.01]
    assert {link["rel"] for link in body["links"]} == {"self", "collection"}
    assert "device_id" not in body["properties"]


def test_tags_are_published_as_json_text(get):
    """A list property would be a GDAL StringList, which GeoPackage and Shapefile cannot hold: tags
    are one string holding the JSON array, exact whatever a tag contains."""
    feature = get("/ogc/collections/hotspots/items", district="110198").json()["features"][0]
    assert isinstance(feature["properties"]["tags"], str)
    assert json.loads(feature["properties"]["tags"]) == TAGS


def test_feature_with_a_text_id(get):
    body = get("/ogc/collections/streets/items/110198002/").json()
    assert body["id"] == "110198002" and body["properties"]["kind"] == "town"


def test_crs_epsg_4490_swaps_axes_and_says_so(get, world):
    response = get("/ogc/collections/officers/items", crs=EPSG_4490, street="110198002")
    assert response["Content-Crs"] == f"<{EPSG_4490}>"
    assert [f["geometry"]["coordinates"] for f in response.json()["features"]] == [[30.01, 100.06], [30.02, 100.07]]
    one = get(f"/ogc/collections/officers/items/{world.officers.s2_a.pk}", crs="EPSG:4490")
    assert one["Content-Crs"] == f"<{EPSG_4490}>" and one.json()["geometry"]["coordinates"] == [30.01, 100.06]


def test_unit_without_a_position_is_listed_but_not_in_a_bbox(get, world):
    listed = get("/ogc/collections/officers/items", street="110198001").json()
    nowhere = next(f for f in listed["features"] if f["id"] == world.officers.s1_nowhere.pk)
    assert nowhere["geometry"] is None and listed["numberMatched"] == 3
    boxed = get("/ogc/collections/officers/items", street="110198001", bbox="99,29,101,31").json()
    assert boxed["numberMatched"] == 2


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "params", "status"), [
    ("/ogc/collections/cameras/items", {"bbox": "1,2,3"}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "1,2,3,4,5"}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "117,39,116,40"}, 400),  # minx > maxx
    ("/ogc/collections/cameras/items", {"bbox": "116,40,117,39"}, 400),  # miny > maxy
    ("/ogc/collections/cameras/items", {"bbox": "116,39,117,91"}, 400),  # latitude
    ("/ogc/collections/cameras/items", {"bbox": "116,nan,117,40"}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "116,inf,117,40"}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "a,b,c,d"}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "39,116,40,117", "bbox-crs": "EPSG:9999"}, 400),
    ("/ogc/collections/cameras/items", {"limit": "ten"}, 400),
    ("/ogc/collections/cameras/items", {"limit": "0"}, 400),
    ("/ogc/collections/cameras/items", {"limit": "-1"}, 400),
    ("/ogc/collections/cameras/items", {"limit": "10001"}, 400),
    ("/ogc/collections/cameras/items", {"offset": "-1"}, 400),
    ("/ogc/collections/cameras/items", {"offset": "99999999999999999999"}, 400),
    ("/ogc/collections/cameras/items", {"crs": "EPSG:3857"}, 400),
    ("/ogc/collections/cameras/items", {"source": "hacked"}, 400),
    ("/ogc/collections/cameras/items", {"district": "120101"}, 400),
    ("/ogc/collections/cameras/items", {"district": "1' OR '1'='1"}, 400),
    ("/ogc/collections/cameras/items", {"colour": "red"}, 400),
    ("/ogc/collections/cameras/items", {"f": "html"}, 400),
    ("/ogc/collections/cameras/items/1", {"crs": "EPSG:4326"}, 400),
    ("/ogc/collections/nothing", {}, 404),
    ("/ogc/collections/nothing/items", {}, 404),
    ("/ogc/collections/cameras/items/999999999999", {}, 404),
    ("/ogc/collections/cameras/items/abc", {}, 404),
    ("/ogc/collections/cameras/items/99999999999999999999999", {}, 404),
    ("/ogc/collections/streets/items/000000000", {}, 404),
    ("/ogc/nowhere", {}, 404),
    # NUL bytes and huge numbers anywhere: a 4xx problem, never a 500 (issue 14).
    ("/ogc/collections/districts/items/\x00", {}, 404),
    ("/ogc/collections/streets/items/a\x00b", {}, 404),
    ("/ogc/collections/streets/items/110198001\n", {}, 404),
    ("/ogc/collections/cameras/items/1\x00", {}, 404),
    ("/ogc/collections/cameras/items/" + "9" * 401, {}, 404),
    ("/ogc/collections/\x00/items", {}, 404),
    ("/ogc/collections/cameras/items", {"limit": "1\x00"}, 400),
    ("/ogc/collections/cameras/items", {"limit": "9" * 401}, 400),
    ("/ogc/collections/cameras/items", {"offset": "9" * 5000}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "1" * 401 + ",39,117,40"}, 400),
    ("/ogc/collections/cameras/items", {"bbox": "116,39\x00,117,40"}, 400),
    ("/ogc/collections/cameras/items", {"crs": "\x00"}, 400),
    ("/ogc/collections/cameras/items", {"source": "self_built\x00"}, 400),
    ("/ogc/collections/cameras/items", {"district": "110198\x00"}, 400),
    ("/ogc/collections/cameras/items", {"f": "\x00"}, 400),
    ("/ogc/collections/cameras/items", {"\x00": "1"}, 400),
    ("/ogc/collections/cameras/items", {"cursor": "\x00"}, 400),
    ("/ogc/collections/cameras/items", {"cursor": "9" * 401}, 400),
    ("/ogc/collections/cameras/items", {"cursor": "abc"}, 400),
    ("/ogc/collections/cameras/items", {"cursor": "5", "offset": "5"}, 400),
    ("/ogc/collections/streets/items", {"cursor": "a\x00b"}, 400),
])
def test_bad_requests_are_problem_details(get, path, params, status):
    response = get(quote(path), **params)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"] == "about:blank"


def test_writes_are_refused(client, world):
    response = client.post("/ogc/collections/cameras/items", {}, **bearer(world.city))
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


# -- authentication --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/cameras",
                                  "/ogc/collections/cameras/items", "/ogc/collections/cameras/items/1"])
def test_anonymous_gets_401_with_a_bearer_challenge(client, db, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_token_is_401(client, db):
    response = client.get("/ogc/collections", HTTP_AUTHORIZATION="Bearer om_not-a-token")
    assert response.status_code == 401


def test_session_login_works(client, world):
    client.force_login(world.district)
    response = client.get("/ogc/collections/officers/items")
    assert response.status_code == 200 and response.json()["numberMatched"] == 5


# -- jurisdiction ----------------------------------------------------------------------------------

def officer_ids(get, user, **params) -> set:  # type: ignore[no-untyped-def]
    body = get("/ogc/collections/officers/items", user=user, limit=1000, **params).json()
    return set(ids(body))


def test_district_dispatcher_sees_only_its_district(get, world):
    seen = officer_ids(get, world.district)
    assert seen == {o.pk for o in Officer.objects.filter(district_id="110198")}
    assert len(seen) == 5


def test_street_dispatcher_sees_only_its_street(get, world):
    seen = officer_ids(get, world.street)
    assert seen == {world.officers.s1_a.pk, world.officers.s1_b.pk, world.officers.s1_nowhere.pk}
    hotspots = get("/ogc/collections/hotspots/items", user=world.street).json()
    assert hotspots["numberMatched"] == 1


def test_city_sees_all(get, world):
    body = get("/ogc/collections/officers/items", user=world.city).json()
    assert body["numberMatched"] == Officer.objects.count()
    assert officer_ids(get, world.city, district="110199") == {world.officers.d99_a.pk, world.officers.d99_b.pk}


def test_user_without_profile_sees_no_scoped_rows_but_public_ones(get, world):
    assert officer_ids(get, world.nobody) == set()
    cameras = get("/ogc/collections/cameras/items", user=world.nobody, district="110198").json()
    assert cameras["numberMatched"] == 30


def test_feature_outside_the_jurisdiction_is_404(get, world):
    outside = world.officers.d99_a.pk
    assert get(f"/ogc/collections/officers/items/{outside}", user=world.district).status_code == 404
    assert get(f"/ogc/collections/officers/items/{world.officers.s2_a.pk}", user=world.street).status_code == 404
    assert get(f"/ogc/collections/officers/items/{outside}", user=world.city).status_code == 200


# -- query budget ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "queries"), [
    ({"limit": 5}, 3),     # token + page + count (the page is full, so the total must be counted)
    ({"limit": 100}, 2),   # token + page (a short first page proves the total)
    ({"limit": 5, "cursor": "1"}, 2),  # token + page: a cursor page never counts
])
def test_items_query_budget(client, world, params, queries):
    headers = bearer(world.district)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/ogc/collections/cameras/items", {"district": "110198", **params}, **headers)
    assert response.status_code == 200
    assert len(captured) == queries, [q["sql"][:120] for q in captured]


@pytest.mark.parametrize(("path", "queries"), [
    # The token was looked up by the first request (remembered for ONEMAP_API_TOKEN_CHECK_S).
    ("/ogc/", 0),
    ("/ogc/api", 0),           # the definition comes from the registry
    ("/ogc/collections", 1),   # the districts' version (the extent is cached per version)
    ("/ogc/collections/cameras", 1),
    ("/ogc/collections/cameras/items/1", 1),  # the feature
    ("/ogc/collections/streets/items/a%00b", 0),  # refused before any SQL
])
def test_metadata_query_budget(client, world, path, queries):
    headers = bearer(world.district)
    client.get("/ogc/collections", **headers)  # the extent computed once, as in a running process
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **headers)
    assert response.status_code in (200, 404)
    assert len(captured) == queries, [q["sql"][:120] for q in captured]
