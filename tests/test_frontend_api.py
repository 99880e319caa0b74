"""The map pages' small APIs (search, summary, label points) against the real PostGIS fixtures:
scoped to the user's jurisdiction, bad input answered with a problem; and static files streamed
the way an ASGI server can (no "must consume synchronous iterators" warning)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from django.db import connection
from django.test import AsyncClient

from geo.models import Camera, GridCell, HotspotPoint, Officer

DEMO_PASSWORD = "onemap-demo"


def logged_in(client, username: str):  # type: ignore[no-untyped-def]
    assert client.login(username=username, password=DEMO_PASSWORD)
    return client


def scalar(sql: str, params: list[str]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/map/search?q=东华门", "/api/map/summary", "/api/map/labels.geojson?level=street"])
def test_apis_need_a_login(client, url: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_search_finds_streets_communities_grid_cells_and_hotspots(client) -> None:  # type: ignore[no-untyped-def]
    logged_in(client, "dongcheng")
    results = client.get("/api/map/search", {"q": "东华门"}).json()["results"]
    street = next(r for r in results if r["kind"] == "street")
    assert street["id"] == "110101001" and street["context"] == "东城区" and len(street["bbox"]) == 4
    assert any(r["kind"] == "hotspot" and r["center"] for r in results)
    cell = GridCell.objects.filter(district_id="110101").order_by("code").first()
    assert cell is not None
    found = client.get("/api/map/search", {"q": cell.code}).json()["results"]
    assert found[0] == {"kind": "gridcell", "id": cell.code, "name": cell.code, "context": cell.community.name,
                        "bbox": pytest.approx([round(v, 6) for v in cell.geom.extent])}
    community = client.get("/api/map/search", {"q": cell.community.name}).json()["results"]
    assert any(r["kind"] == "community" and r["id"] == cell.community_id for r in community)


@pytest.mark.django_db
def test_search_keeps_to_the_jurisdiction(client) -> None:  # type: ignore[no-untyped-def]
    elsewhere = HotspotPoint.objects.exclude(district_id="110101").order_by("id").first()
    assert elsewhere is not None
    logged_in(client, "dongcheng")
    results = client.get("/api/map/search", {"q": elsewhere.name}).json()["results"]
    assert all(r["kind"] != "hotspot" or r["id"] != elsewhere.id for r in results)
    client.logout()
    results = logged_in(client, "commander").get("/api/map/search", {"q": elsewhere.name}).json()["results"]
    assert any(r["kind"] == "hotspot" and r["id"] == elsewhere.id for r in results)


@pytest.mark.django_db
@pytest.mark.parametrize("q", ["", "   ", "x" * 65])
def test_search_rejects_bad_input(client, q: str) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(client, "dongcheng").get("/api/map/search", {"q": q})
    assert response.status_code == 400 and response.json()["status"] == 400


@pytest.mark.django_db
def test_search_text_is_data_not_sql(client) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(client, "commander").get("/api/map/search", {"q": "1001' OR '1'='1"})
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.django_db
def test_summary_counts_inside_the_jurisdiction(client) -> None:  # type: ignore[no-untyped-def]
    body = logged_in(client, "dongcheng").get("/api/map/summary").json()
    assert body["districts"] == 1
    assert body["cameras"]["total"] == Camera.objects.filter(district_id="110101").count()
    assert body["cameras"]["online"] == Camera.objects.filter(district_id="110101", status="online").count()
    assert body["hotspots"]["open"] == HotspotPoint.objects.filter(district_id="110101", status="open").count()
    officers = body["officers"]
    assert officers["total"] == Officer.objects.filter(district_id="110101").count()
    positioned = Officer.objects.filter(district_id="110101", position_at__isnull=False).count()
    assert officers["on_duty"] + officers["stale"] == positioned
    client.logout()
    street = logged_in(client, "donghuamen").get("/api/map/summary").json()
    assert street["streets"] == 1 and street["gridcells"] == GridCell.objects.filter(street_id="110101001").count()
    assert street["officers"]["total"] == Officer.objects.filter(street_id="110101001").count() < officers["total"]


@pytest.mark.django_db
def test_label_points_of_streets_and_communities(client) -> None:  # type: ignore[no-untyped-def]
    logged_in(client, "officer1")
    streets = client.get("/api/map/labels.geojson", {"level": "street"}).json()["features"]
    assert len(streets) == scalar("SELECT count(*) FROM geo_street", [])
    bbox = "116.39,39.90,116.42,39.93"
    communities = client.get("/api/map/labels.geojson", {"level": "community", "bbox": bbox}).json()["features"]
    expected = scalar("SELECT count(*) FROM geo_community WHERE geom && ST_MakeEnvelope(116.39, 39.90, 116.42, 39.93, 4490)", [])
    assert len(communities) == expected > 0
    assert all(f["properties"]["name"] and f["geometry"]["type"] == "Point" for f in communities)


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{"level": "community"}, {"level": "community", "bbox": "1,2,3"},
                                   {"level": "community", "bbox": "116,39,118,41"},
                                   {"level": "community", "bbox": "116.4,39.9,116.3,39.95"}, {"level": "grid"}, {}])
def test_label_points_reject_bad_input(client, query: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(client, "officer1").get("/api/map/labels.geojson", query)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_static_files_stream_asynchronously() -> None:
    """Under ASGI a static file is an asynchronous stream: Django no longer warns that it must
    consume a synchronous iterator, and the bytes are the file's. (No database: WhiteNoise answers
    before anything reads one.)"""
    asyncio.run(fetch_static_files())


async def fetch_static_files() -> None:
    from django.contrib.staticfiles import finders

    path = finders.find("vendor/maplibre-gl/maplibre-gl.js")
    assert path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response: Any = await AsyncClient().get("/static/vendor/maplibre-gl/maplibre-gl.js")
        assert response.status_code == 200 and response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
        with open(path, "rb") as handle:  # noqa: PTH123, ASYNC230 (a test reading the expected bytes)
            assert body == handle.read()
        cached: Any = await AsyncClient().get("/static/frontend/onemap.css", HTTP_IF_NONE_MATCH=response.get("ETag", "x"))
        assert cached.is_async
