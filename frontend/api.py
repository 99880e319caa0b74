"""The small JSON feeds of the map pages: search (flies the map to a grid cell, street, community
or hotspot), the summary counts (the wall's KPIs and the console's legend) and the label points of
streets and communities. Everything is read inside the user's jurisdiction; request values reach
SQL only as bound parameters (the ORM, or %s)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.db.models.functions import Envelope
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.jurisdiction import Jurisdiction
from config.problems import Problem, problem_view, unauthorized
from frontend.views import GEOJSON_DECIMALS, feature_collection
from geo.models import Camera, Community, District, GridCell, HotspotPoint, Officer, Street, Vehicle

SEARCH_MAX_CHARS = 64
SEARCH_PER_KIND = 6
# Community label points are fetched for the view only (7,535 of them city-wide); a view wider
# than this is not at street zoom, where they are drawn.
LABEL_BBOX_MAX_DEG2 = 1.0
LABEL_MAX_FEATURES = 3000
STREET_LABELS_SQL = (
    "SELECT code, json_build_object('type', 'Feature', 'id', code, "
    "'properties', json_build_object('code', code, 'name', name, 'district', district_id), "
    "'geometry', ST_AsGeoJSON(ST_PointOnSurface(geom), %s)::json) AS feature FROM geo_street")
COMMUNITY_LABELS_SQL = (
    "SELECT code, json_build_object('type', 'Feature', 'id', code, "
    "'properties', json_build_object('code', code, 'name', name, 'street', street_id), "
    "'geometry', ST_AsGeoJSON(ST_PointOnSurface(geom), %s)::json) AS feature FROM geo_community "
    "WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490) ORDER BY code LIMIT %s")


def jurisdiction_of(request: HttpRequest) -> Jurisdiction:
    if not request.user.is_authenticated:
        raise unauthorized()
    jurisdiction = Jurisdiction.of(request.user)
    if jurisdiction.level == "none":
        raise Problem(403, "This account has no jurisdiction.")
    return jurisdiction


def divisions_in(queryset: QuerySet[Any], jurisdiction: Jurisdiction, district_field: str = "district_id") -> QuerySet[Any]:
    """Boundaries are context: a district's or street's dispatcher searches their whole district."""
    if jurisdiction.level == "city":
        return queryset
    return queryset.filter(**{district_field: jurisdiction.district})


def bbox_of(envelope: Any) -> list[float] | None:
    return [round(v, 6) for v in envelope.extent] if envelope is not None else None


def search_results(q: str, jurisdiction: Jurisdiction) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if q.isdigit() and len(q) >= 4:
        cells = divisions_in(GridCell.objects.filter(code__startswith=q), jurisdiction)
        for cell in cells.annotate(env=Envelope("geom")).values("code", "community__name", "env").order_by("code")[:SEARCH_PER_KIND]:
            results.append({"kind": "gridcell", "id": cell["code"], "name": cell["code"],
                            "context": cell["community__name"], "bbox": bbox_of(cell["env"])})
    streets = divisions_in(Street.objects.filter(name__icontains=q), jurisdiction)
    for street in streets.annotate(env=Envelope("geom")).values("code", "name", "district__name", "env").order_by("code")[:SEARCH_PER_KIND]:
        results.append({"kind": "street", "id": street["code"], "name": street["name"],
                        "context": street["district__name"], "bbox": bbox_of(street["env"])})
    communities = divisions_in(Community.objects.filter(name__icontains=q), jurisdiction)
    for community in communities.annotate(env=Envelope("geom")).values("code", "name", "street__name", "env").order_by("code")[:SEARCH_PER_KIND]:
        results.append({"kind": "community", "id": community["code"], "name": community["name"],
                        "context": community["street__name"], "bbox": bbox_of(community["env"])})
    # The hotspot ledger is the jurisdiction's own: a street dispatcher finds their street's only.
    hotspots = HotspotPoint.objects.filter(jurisdiction.q(), name__icontains=q)
    for hotspot in hotspots.values("id", "name", "street__name", "geom").order_by("id")[:SEARCH_PER_KIND]:
        results.append({"kind": "hotspot", "id": hotspot["id"], "name": hotspot["name"],
                        "context": hotspot["street__name"],
                        "center": [round(hotspot["geom"].x, 6), round(hotspot["geom"].y, 6)], "bbox": None})
    return results


@require_GET
@problem_view
def search(request: HttpRequest) -> HttpResponse:
    """GET /api/map/search?q=东华门 — at most 6 results of each kind."""
    jurisdiction = jurisdiction_of(request)
    q = request.GET.get("q", "").strip()
    if not q:
        raise Problem(400, "Give a search text: ?q=<grid code, street, community or hotspot name>.")
    if len(q) > SEARCH_MAX_CHARS:
        raise Problem(400, f"A search text is at most {SEARCH_MAX_CHARS} characters.")
    return JsonResponse({"q": q, "results": search_results(q, jurisdiction)}, json_dumps_params={"ensure_ascii": False})


def unit_counts(model: type[Officer] | type[Vehicle], jurisdiction: Jurisdiction) -> dict[str, int]:
    """Units with a position, those that reported within the stale limit (on duty) and the rest."""
    cutoff = timezone.now() - timedelta(seconds=getattr(settings, "ONEMAP_STALE_AFTER_S", 120))
    counts = model.objects.filter(jurisdiction.q()).aggregate(
        total=Count("id"), positioned=Count("id", filter=Q(position_at__isnull=False)),
        on_duty=Count("id", filter=Q(position_at__gte=cutoff)))
    return {"total": counts["total"], "on_duty": counts["on_duty"], "stale": counts["positioned"] - counts["on_duty"]}


@require_GET
@problem_view
def summary(request: HttpRequest) -> HttpResponse:
    """GET /api/map/summary — the counts of every map layer inside the user's jurisdiction."""
    jurisdiction = jurisdiction_of(request)
    cameras = Camera.objects.filter(jurisdiction.q()).aggregate(
        total=Count("id"), online=Count("id", filter=Q(status=Camera.Status.ONLINE)))
    hotspots = HotspotPoint.objects.filter(jurisdiction.q()).aggregate(
        total=Count("id"), open=Count("id", filter=Q(status=HotspotPoint.Status.OPEN)))
    if jurisdiction.level == "street":
        streets, cells = Street.objects.filter(code=jurisdiction.street), GridCell.objects.filter(street_id=jurisdiction.street)
    else:
        streets, cells = divisions_in(Street.objects.all(), jurisdiction), divisions_in(GridCell.objects.all(), jurisdiction)
    districts = District.objects.all() if jurisdiction.level == "city" else District.objects.filter(code=jurisdiction.district)
    body = {
        "jurisdiction": jurisdiction.label,
        "districts": districts.count(),
        "streets": streets.count(),
        "gridcells": cells.count(),
        "hotspots": hotspots,
        "cameras": cameras,
        "officers": unit_counts(Officer, jurisdiction),
        "vehicles": unit_counts(Vehicle, jurisdiction),
        "at": timezone.now().isoformat(),
    }
    response = JsonResponse(body)
    response["Cache-Control"] = "private, no-cache"
    return response


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in raw.split(","))
    except ValueError:
        raise Problem(400, "bbox is west,south,east,north in degrees.") from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise Problem(400, "bbox is west,south,east,north in degrees, west < east and south < north.")
    if (east - west) * (north - south) > LABEL_BBOX_MAX_DEG2:
        raise Problem(400, f"bbox covers at most {LABEL_BBOX_MAX_DEG2} square degrees (community labels are drawn at street zoom).")
    return west, south, east, north


@require_GET
@problem_view
def labels(request: HttpRequest) -> HttpResponse:
    """GET /api/map/labels.geojson?level=street, or ?level=community&bbox=w,s,e,n: one label point
    per division (inside it), named. Boundaries are context: every user sees every name."""
    jurisdiction_of(request)
    level = request.GET.get("level")
    if level == "street":
        response = feature_collection(STREET_LABELS_SQL, [GEOJSON_DECIMALS])
        response["Cache-Control"] = "private, max-age=3600"
        return response
    if level == "community":
        if "bbox" not in request.GET:
            raise Problem(400, "Community labels need ?bbox=west,south,east,north.")
        west, south, east, north = parse_bbox(request.GET["bbox"])
        return feature_collection(COMMUNITY_LABELS_SQL, [GEOJSON_DECIMALS, west, south, east, north, LABEL_MAX_FEATURES])
    raise Problem(400, "level is street or community.")
