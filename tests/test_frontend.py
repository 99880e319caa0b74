"""The one-map page and its GeoJSON feeds: login required, everything served by us."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection

DEMO_PASSWORD = "onemap-demo"
# Every URL an HTML attribute can make the browser load.
ATTRIBUTE_URL_RE = re.compile(r'\b(?:src|href|srcset|action)\s*=\s*["\']([^"\']*)["\']', re.IGNORECASE)


def logged_in(client, username: str):  # type: ignore[no-untyped-def]
    assert client.login(username=username, password=DEMO_PASSWORD)
    return client


def sql_bbox(sql: str, params: list[str]) -> list[float]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ({sql}) AS x(e)", params)
        return list(cursor.fetchone())


def map_config(html: str) -> dict:
    match = re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page carries its map configuration"
    return json.loads(match.group(1))


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_login(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


@pytest.mark.django_db
def test_map_page_loads_only_our_own_static_files(client) -> None:  # type: ignore[no-untyped-def]
    html = logged_in(client, "commander").get("/").content.decode()
    assert '<div id="map"' in html
    assert "OneMap" in html and "一图指挥调度" in html
    assert "http://" not in html and "https://" not in html

    urls = ATTRIBUTE_URL_RE.findall(html)
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert scripts == ["/static/vendor/maplibre-gl/maplibre-gl.js", "/static/frontend/one_map.js",
                       "/static/frontend/live_units.js"]
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        if url.startswith("/static/"):
            # WhiteNoise serves it (from node_modules for the vendor files).
            assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_map_page_header_names_the_user_role_and_jurisdiction(client) -> None:  # type: ignore[no-untyped-def]
    html = logged_in(client, "donghuamen").get("/").content.decode()
    assert "donghuamen" in html or "东华门街道调度" in html
    assert "街道调度员 street dispatcher" in html
    assert "street 110101001" in html
    assert 'action="/logout/"' in html and 'method="post"' in html


@pytest.mark.django_db
def test_map_opens_on_the_users_jurisdiction(client) -> None:  # type: ignore[no-untyped-def]
    city = map_config(logged_in(client, "commander").get("/").content.decode())
    assert city["bbox"] == pytest.approx(sql_bbox("SELECT ST_Extent(geom) FROM geo_district", []))
    client.logout()
    district = map_config(logged_in(client, "dongcheng").get("/").content.decode())
    assert district["bbox"] == pytest.approx(
        sql_bbox("SELECT ST_Extent(geom) FROM geo_district WHERE code = %s", ["110101"]))
    assert district["highlightDistrict"] == "110101"
    # A district lies inside the city.
    assert city["bbox"][0] <= district["bbox"][0] and district["bbox"][2] <= city["bbox"][2]


@pytest.mark.django_db
def test_districts_geojson_requires_login(client) -> None:  # type: ignore[no-untyped-def]
    for url in ("/api/map/districts.geojson", "/api/map/district-labels.geojson"):
        response = client.get(url)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 401


@pytest.mark.django_db
def test_districts_geojson_has_every_district(client) -> None:  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM geo_district")
        count = cursor.fetchone()[0]
    assert count > 0

    response = logged_in(client, "officer1").get("/api/map/districts.geojson")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    collection = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == count
    dongcheng = next(f for f in collection["features"] if f["properties"]["code"] == "110101")
    assert dongcheng["properties"]["name"] == "东城区"
    assert dongcheng["geometry"]["type"] in {"Polygon", "MultiPolygon"}

    labels = json.loads(client.get("/api/map/district-labels.geojson").content)
    assert len(labels["features"]) == count
    assert {f["geometry"]["type"] for f in labels["features"]} == {"Point"}


@pytest.mark.django_db
def test_label_points_lie_inside_their_districts(client) -> None:  # type: ignore[no-untyped-def]
    labels = json.loads(logged_in(client, "wall").get("/api/map/district-labels.geojson").content)
    with connection.cursor() as cursor:
        for feature in labels["features"]:
            cursor.execute(
                "SELECT ST_Intersects(geom, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4490)) FROM geo_district WHERE code = %s",
                [json.dumps(feature["geometry"]), feature["properties"]["code"]],
            )
            assert cursor.fetchone()[0], feature["properties"]["code"]
