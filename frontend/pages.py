"""The pages of the one map: `/` sends each role to its mode, and the three modes (wall, console,
field) are one template and one ES module each over the same map code (frontend/modes.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts.jurisdiction import Jurisdiction
from accounts.models import Role
from frontend.modes import MODES, Mode, home_mode, may_open, role_of
from frontend.names import division_names, jurisdiction_name
from frontend.views import VALUE_LABELS, jurisdiction_bbox
from geo.models import District

ROLE_LABELS: dict[str, Any] = {
    Role.CITY_COMMANDER: _("指挥中心"),
    Role.DISTRICT_DISPATCHER: _("区调度员"),
    Role.STREET_DISPATCHER: _("街道调度员"),
    Role.FIELD_OFFICER: _("执法队员"),
    Role.WALL_DISPLAY: _("指挥大屏"),
    Role.VERIFIER: _("核查员"),
}
# The wall's tour: how long it stays on each district (seconds).
TOUR_DWELL_S = 20


def role_label(user: Any) -> str:
    role = role_of(user)
    if role is not None:
        return str(ROLE_LABELS.get(role, role))
    return str(_("系统管理员")) if user.is_superuser else str(_("无角色"))


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return HttpResponseForbidden(render_to_string("frontend/forbidden.html", {"message": message}, request))


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    mode = home_mode(request.user)
    if mode is None:
        return forbidden(request, str(_("此账号没有地图角色，请联系管理员。")))
    return redirect(f"/{mode}")


def tour_stops(jurisdiction: Jurisdiction) -> list[dict[str, Any]]:
    """The districts the wall tours through, each with the extent it flies to."""
    districts = District.objects.order_by("code")
    if jurisdiction.level in {"district", "street"}:
        districts = districts.filter(code=jurisdiction.district)
    return [{"code": d.code, "name": d.name, "bbox": list(d.geom.extent)} for d in districts.only("code", "name", "geom")]


def map_config(request: HttpRequest, mode: Mode, jurisdiction: Jurisdiction) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mode": mode.name,
        "theme": mode.theme,
        "live": mode.live,
        "lang": get_language(),
        "bbox": jurisdiction_bbox(jurisdiction),
        "highlightDistrict": jurisdiction.district,
        "styleUrl": "/tiles/style.json",
        "styleRefreshSeconds": 30,
        "featureUrl": "/ogc/collections/{collection}/items/{id}",
        "labelsUrl": "/api/map/labels.geojson",
        "summaryUrl": "/api/map/summary",
        "searchUrl": "/api/map/search",
        "valueLabels": VALUE_LABELS,
        "names": division_names(jurisdiction),
        "staleAfterSeconds": getattr(settings, "ONEMAP_STALE_AFTER_S", 120),
    }
    if mode.name == "wall":
        config["tour"] = {"dwellSeconds": TOUR_DWELL_S, "stops": tour_stops(jurisdiction)}
    if mode.name == "field":
        profile = getattr(request.user, "profile", None)
        officer = getattr(profile, "officer", None)
        config["officer"] = None if officer is None else {
            "id": officer.id, "name": officer.name, "callSign": officer.call_sign, "deviceId": officer.device_id,
            "position": [officer.geom.x, officer.geom.y] if officer.geom else None}
        config["fieldSocket"] = "/ws/field"
        config["serviceWorker"] = "/field-sw.js"
    return config


def mode_page(mode_name: str):  # type: ignore[no-untyped-def]
    mode = MODES[mode_name]

    @login_required
    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        user = request.user
        if not may_open(user, mode):
            return forbidden(request, str(_("此账号不能打开这个页面。")))
        assert user.is_authenticated  # guaranteed by @login_required
        jurisdiction = Jurisdiction.of(user)
        if jurisdiction.level == "none":
            return forbidden(request, str(_("此账号没有管辖范围，请联系管理员。")))
        return render(request, mode.template, {
            "mode": mode,
            "display_name": user.get_full_name() or user.get_username(),
            "role_label": role_label(user),
            "jurisdiction_name": jurisdiction_name(jurisdiction),
            "map_config": map_config(request, mode, jurisdiction),
        })

    view.__name__ = f"{mode_name}_page"
    return view


wall = mode_page("wall")
console = mode_page("console")
field = mode_page("field")
