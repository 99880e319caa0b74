"""The Django admin of the spatial models: offline map widget, cheap changelists, and a point
that survives the form round trip (4490 storage, 3857 map) to within 1e-7 degrees."""

from __future__ import annotations

import html as html_lib
import json
import math
import re
from datetime import timedelta

import pytest
from django.contrib.gis.geos import MultiPolygon
from django.utils import timezone

from geo.models import Camera, Community, District, GridCell, HotspotCategory, HotspotPoint, Street

DEMO_PASSWORD = "onemap-demo"
# The check from the brief, plus Django's default NASA base layer.
CDN_RE = re.compile(r"https?://[^ \"']*(unpkg|jsdelivr|cdnjs|googleapis|openstreetmap|mapbox\.com|arcgisonline|earthdata)")
SCRIPT_SRC_RE = re.compile(r'<script[^>]*\bsrc="([^"]+)"')
LINK_HREF_RE = re.compile(r'<link[^>]*\bhref="([^"]+)"')
EARTH_RADIUS_M = 6378137.0  # the Web Mercator sphere


def web_mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:3857 as OpenLayers computes it in the browser."""
    return (EARTH_RADIUS_M * math.radians(lon),
            EARTH_RADIUS_M * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


@pytest.fixture
def admin_client_demo(db, client):  # type: ignore[no-untyped-def]
    assert client.login(username="admin", password=DEMO_PASSWORD)
    return client


@pytest.fixture
def sample_rows(db):  # type: ignore[no-untyped-def]
    """One camera, grid cell and hotspot in Dongcheng: the loaded ones, or made here when the
    fixtures are not loaded (rolled back after the test)."""
    district = District.objects.get(code="110101")
    street = Street.objects.get(code="110101001")
    cell = GridCell.objects.filter(street=street).order_by("code").first()
    if cell is None:
        box = MultiPolygon(district.geom.point_on_surface.buffer(0.002).envelope, srid=4490)
        community, _ = Community.objects.get_or_create(code="110101001001", defaults={
            "name": "测试社区", "street": street, "district": district, "geom": box})
        cell = GridCell.objects.create(code="110101001001001", community=community, street=street,
                                       district=district, geom=box)
    point = cell.geom.point_on_surface
    camera = Camera.objects.order_by("id").first() or Camera.objects.create(
        code="T-0001", name="测试探头", source=Camera.Source.SELF_BUILT, owner_unit="东城区城管执法局",
        geom=point, district=district, street=street, grid_cell=cell)
    hotspot = HotspotPoint.objects.order_by("id").first() or HotspotPoint.objects.create(
        category=HotspotCategory.STREET_VENDING, name="测试点位", opened_at=timezone.now() - timedelta(days=3),
        tags=["夜市", "桥下"], geom=point, district=district, street=street, grid_cell=cell)
    return {"camera": camera, "gridcell": cell, "hotspotpoint": hotspot}


def assert_served_offline(html: str) -> None:
    assert not CDN_RE.search(html), CDN_RE.search(html)
    for url in SCRIPT_SRC_RE.findall(html) + LINK_HREF_RE.findall(html):
        assert url.startswith("/") and not url.startswith("//"), url


@pytest.mark.parametrize("model", ["camera", "gridcell", "hotspotpoint"])
def test_changelist_loads_with_a_bounded_number_of_queries(
        admin_client_demo, sample_rows, django_assert_max_num_queries, model) -> None:  # type: ignore[no-untyped-def]
    # Session, user, one COUNT, one page of rows, the district filter's names, plus a margin;
    # nothing per row.
    with django_assert_max_num_queries(10):
        response = admin_client_demo.get(f"/admin/geo/{model}/")
    assert response.status_code == 200
    assert_served_offline(response.content.decode())


@pytest.mark.parametrize("model", ["camera", "gridcell", "hotspotpoint"])
def test_change_page_uses_the_offline_map_widget(admin_client_demo, sample_rows, model) -> None:  # type: ignore[no-untyped-def]
    obj = sample_rows[model]
    response = admin_client_demo.get(f"/admin/geo/{model}/{obj.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert_served_offline(html)
    assert "/static/vendor/ol/dist/ol.js" in html and "/static/vendor/ol/ol.css" in html
    assert "/api/map/districts.geojson" in html  # the context layer instead of tiles
    assert "geom_3857" not in html
    assert "geom_3857" not in response.context["adminform"].form.fields
    for url in ("/static/vendor/ol/dist/ol.js", "/static/vendor/ol/ol.css", "/static/gis/js/OLMapWidget.js"):
        assert admin_client_demo.get(url).status_code == 200, url


def hotspot_post_data(hotspot: HotspotPoint, geom_value: str) -> dict[str, str]:
    opened = timezone.localtime(hotspot.opened_at)
    return {
        "geom": geom_value,
        "grid_cell": hotspot.grid_cell_id or "",
        "street": hotspot.street_id or "",
        "district": hotspot.district_id,
        "category": hotspot.category,
        "name": hotspot.name,
        "status": hotspot.status,
        "tags": ",".join(hotspot.tags),
        "opened_at_0": opened.strftime("%Y-%m-%d"),
        "opened_at_1": opened.strftime("%H:%M:%S"),
        "closed_at_0": "",
        "closed_at_1": "",
        "_save": "Save",
    }


def test_hotspot_form_saves_a_moved_point(admin_client_demo, sample_rows) -> None:  # type: ignore[no-untyped-def]
    hotspot = sample_rows["hotspotpoint"]
    lon, lat = hotspot.geom.x + 0.001234567, hotspot.geom.y - 0.000765432
    x, y = web_mercator(lon, lat)
    moved = json.dumps({"type": "Point", "coordinates": [x, y]})  # what the widget's JS posts

    response = admin_client_demo.post(f"/admin/geo/hotspotpoint/{hotspot.pk}/change/",
                                      hotspot_post_data(hotspot, moved))
    assert response.status_code == 302, response.context["adminform"].form.errors
    hotspot.refresh_from_db()
    assert hotspot.geom.srid == 4490
    assert hotspot.geom.x == pytest.approx(lon, abs=1e-7)
    assert hotspot.geom.y == pytest.approx(lat, abs=1e-7)


def test_hotspot_form_round_trip_keeps_an_unmoved_point(admin_client_demo, sample_rows) -> None:  # type: ignore[no-untyped-def]
    hotspot = sample_rows["hotspotpoint"]
    before = (hotspot.geom.x, hotspot.geom.y)
    page = admin_client_demo.get(f"/admin/geo/hotspotpoint/{hotspot.pk}/change/").content.decode()
    textarea = re.search(r'<textarea id="id_geom"[^>]*>(.*?)</textarea>', page, re.S)
    assert textarea is not None, "the change form has no geometry textarea"
    serialized = html_lib.unescape(textarea.group(1))
    x, y = json.loads(serialized)["coordinates"]
    assert (x, y) == pytest.approx(web_mercator(*before), abs=1e-3)  # the map gets Web Mercator metres

    response = admin_client_demo.post(f"/admin/geo/hotspotpoint/{hotspot.pk}/change/",
                                      hotspot_post_data(hotspot, serialized))
    assert response.status_code == 302
    hotspot.refresh_from_db()
    assert (hotspot.geom.x, hotspot.geom.y) == pytest.approx(before, abs=1e-7)


def test_read_only_models_cannot_be_added(admin_client_demo) -> None:  # type: ignore[no-untyped-def]
    for model in ("positionfix", "fixtureload"):
        assert admin_client_demo.get(f"/admin/geo/{model}/").status_code == 200
        assert admin_client_demo.get(f"/admin/geo/{model}/add/").status_code == 403


@pytest.mark.parametrize("model", [
    "district", "street", "community", "gridcell", "hotspotpoint", "camera", "enforcementunit", "officer",
    "vehicle", "positionfix", "complaint", "enforcementcase", "fixtureload",
])
def test_every_changelist_loads(admin_client_demo, model) -> None:  # type: ignore[no-untyped-def]
    response = admin_client_demo.get(f"/admin/geo/{model}/?q=1")
    assert response.status_code == 200
