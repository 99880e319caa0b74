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
@pytest.mark.parametrize(("username", "mode"), [("commander", "console"), ("dongcheng", "console"),
                                                ("donghuamen", "console"), ("officer1", "field"), ("wall", "wall"),
                                                ("admin", "console")])
def test_root_sends_each_role_to_its_mode(client, username: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(client, username).get("/")
    assert response.status_code == 302 and response["Location"] == f"/{mode}"


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "path"), [("officer1", "/console"), ("officer1", "/wall"), ("wall", "/console"),
                                                ("wall", "/field"), ("dongcheng", "/field"), ("admin", "/field")])
def test_a_mode_is_closed_to_other_roles(client, username: str, path: str) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(client, username).get(path)
    assert response.status_code == 403
    assert "<div id=\"map\"" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "mode"), [("wall", "wall"), ("dongcheng", "console"), ("officer1", "field")])
def test_mode_pages_load_only_our_own_static_files(client, username: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    html = logged_in(client, username).get(f"/{mode}").content.decode()
    assert '<div id="map"' in html and "OneMap" in html
    assert "http://" not in html and "https://" not in html
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert scripts == ["/static/vendor/maplibre-gl/maplibre-gl.js", f"/static/frontend/{mode}.js"]
    assert f'<script type="module" src="/static/frontend/{mode}.js">' in html
    for url in ATTRIBUTE_URL_RE.findall(html):
        assert url.startswith("/") and not url.startswith("//"), url
        if url.startswith("/static/") or url.endswith(".webmanifest"):
            assert client.get(url).status_code == 200, url
    assert map_config(html)["mode"] == mode


@pytest.mark.django_db
def test_header_names_the_user_role_and_jurisdiction(client) -> None:  # type: ignore[no-untyped-def]
    html = logged_in(client, "donghuamen").get("/console").content.decode()
    assert "东华门街道调度" in html
    assert '<span class="role">街道调度员</span>' in html
    assert '<span class="jurisdiction" title="管辖范围">东城区 东华门街道</span>' in html  # names, not codes
    assert 'action="/logout/"' in html and 'method="post"' in html
    client.logout()
    html = logged_in(client, "dongcheng").get("/console").content.decode()
    assert ">东城区</span>" in html and "110101" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)


@pytest.mark.django_db
def test_the_wall_has_no_logout_and_tours_its_districts(client) -> None:  # type: ignore[no-untyped-def]
    html = logged_in(client, "wall").get("/wall").content.decode()
    assert "/logout/" not in html
    tour = map_config(html)["tour"]
    assert len(tour["stops"]) == 16 and tour["dwellSeconds"] > 0
    assert {s["name"] for s in tour["stops"]} >= {"东城区", "延庆区"}
    client.logout()
    tour = map_config(logged_in(client, "dongcheng").get("/wall").content.decode())["tour"]
    assert [s["code"] for s in tour["stops"]] == ["110101"]


@pytest.mark.django_db
def test_english_is_a_choice_chinese_the_default(client) -> None:  # type: ignore[no-untyped-def]
    logged_in(client, "dongcheng")
    # An English browser still gets Chinese: the command centre works in Chinese unless someone switches.
    html = client.get("/console", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="zh-Hans">' in html and "调度台" in html
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/console"})
    assert response.status_code == 302 and response["Location"] == "/console"
    html = client.get("/console").content.decode()
    assert '<html lang="en">' in html and "Dispatch console" in html and "District dispatcher" in html


@pytest.mark.django_db
def test_favicon_and_field_app_manifest(client) -> None:  # type: ignore[no-untyped-def]
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/x-icon" and icon.content[:4] == b"\0\0\1\0"
    manifest = json.loads(client.get("/field/manifest.webmanifest").content)
    assert manifest["start_url"] == "/field" and manifest["display"] == "standalone"
    for icon_entry in manifest["icons"]:
        assert client.get(icon_entry["src"]).status_code == 200
    worker = client.get("/field-sw.js")
    assert worker.status_code == 200 and worker["Content-Type"].startswith("text/javascript")
    found = re.search(r"const SHELL = (\[.*?\]);", worker.content.decode())
    assert found, "the worker lists its app shell"
    shell = json.loads(found.group(1))
    assert "/field" in shell and "/static/frontend/field.js" in shell
    for url in shell[1:]:
        assert client.get(url).status_code == 200, url


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
