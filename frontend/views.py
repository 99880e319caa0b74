"""The small GeoJSON feeds the map pages draw (district boundaries and their label points,
straight from PostGIS) and the helpers the pages share (frontend/pages.py has the pages)."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from accounts.jurisdiction import Jurisdiction
from geo.models import Camera, HotspotCategory, HotspotPoint

# Beijing's extent (CGCS2000 lon/lat), used when no boundaries are loaded yet.
BEIJING_BBOX = (115.42, 39.44, 117.51, 41.06)
# Douglas-Peucker tolerance in degrees (about 50 m): plenty for a city overview, and it cuts the
# payload of the real boundaries about six-fold (1.2 MB to 0.2 MB).
SIMPLIFY_TOLERANCE_DEG = 0.0005
GEOJSON_DECIMALS = 6  # about 0.1 m
# How the map's popups show coded values ("police_shared" -> "公安共享 ..."): the models' own labels.
VALUE_LABELS = {
    "cameras": {"source": dict(Camera.Source.choices), "status": dict(Camera.Status.choices)},
    "hotspots": {"category": dict(HotspotCategory.choices), "status": dict(HotspotPoint.Status.choices)},
}


def problem(status: int, title: str, detail: str) -> JsonResponse:
    """An RFC 9457 problem document, for API clients that are not logged in."""
    return JsonResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status=status, content_type="application/problem+json")


def api_login_required(view):  # type: ignore[no-untyped-def]
    """Like login_required, but an API answers 401 instead of redirecting to the login page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            response = problem(401, "Unauthorized", "Log in, or send Authorization: Bearer <token>.")
            response["WWW-Authenticate"] = 'Bearer realm="onemap"'
            return response
        return view(request, *args, **kwargs)

    return wrapped


def jurisdiction_bbox(jurisdiction: Jurisdiction) -> tuple[float, float, float, float]:
    """The extent the map opens on: the whole city, or the user's district or street."""
    if jurisdiction.level == "street":
        sql, params = "SELECT ST_Extent(geom) FROM geo_street WHERE code = %s", [jurisdiction.street]
    elif jurisdiction.level == "district":
        sql, params = "SELECT ST_Extent(geom) FROM geo_district WHERE code = %s", [jurisdiction.district]
    else:
        sql, params = "SELECT ST_Extent(geom) FROM geo_district", []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ({sql}) AS extent(e)",  # noqa: S608 (fixed SQL)
            params,
        )
        row = cursor.fetchone()
    if not row or row[0] is None:
        return BEIJING_BBOX
    return (row[0], row[1], row[2], row[3])


def feature_collection(select_features: str, params: list[Any]) -> HttpResponse:
    """Let PostGIS assemble the whole FeatureCollection: one row, no per-feature Python work."""
    # select_features is SQL written in this module; values travel as bound parameters.
    features = "coalesce(json_agg(f.feature ORDER BY f.code), '[]'::json)"
    sql = f"SELECT json_build_object('type', 'FeatureCollection', 'features', {features})::text FROM ({select_features}) AS f"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        body = cursor.fetchone()[0]
    return HttpResponse(body, content_type="application/geo+json")


@require_GET
@api_login_required
def districts_geojson(request: HttpRequest) -> HttpResponse:
    """The districts as simplified polygons. Boundaries are context, so every role sees all 16."""
    return feature_collection(
        "SELECT code, json_build_object('type', 'Feature', 'id', code, "
        "'properties', json_build_object('code', code, 'name', name, 'name_en', name_en), "
        "'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, %s), %s)::json) AS feature "
        "FROM geo_district",
        [SIMPLIFY_TOLERANCE_DEG, GEOJSON_DECIMALS],
    )


@require_GET
@api_login_required
def district_labels_geojson(request: HttpRequest) -> HttpResponse:
    """One label point per district, inside its polygon. Labelling the polygons themselves would
    repeat a name on every tile a large district crosses."""
    return feature_collection(
        "SELECT code, json_build_object('type', 'Feature', 'id', code, "
        "'properties', json_build_object('code', code, 'name', name, 'name_en', name_en), "
        "'geometry', ST_AsGeoJSON(ST_PointOnSurface(geom), %s)::json) AS feature "
        "FROM geo_district",
        [GEOJSON_DECIMALS],
    )
