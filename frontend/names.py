"""Names where people expect names: the jurisdiction badge, and the district and street names the
map's popups show instead of GB/T 2260 codes."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts.jurisdiction import Jurisdiction
from geo.models import District, Street


def jurisdiction_name(jurisdiction: Jurisdiction) -> str:
    """东城区, 东城区 东华门街道, 北京市: what the header badge says."""
    if jurisdiction.level == "city":
        return _("北京市")
    district = District.objects.filter(code=jurisdiction.district).values_list("name", flat=True).first()
    if jurisdiction.level == "district":
        return district or str(jurisdiction.district)
    if jurisdiction.level == "street":
        street = Street.objects.filter(code=jurisdiction.street).values_list("name", flat=True).first()
        return " ".join(filter(None, [district, street or str(jurisdiction.street)]))
    return _("无管辖范围")


def division_names(jurisdiction: Jurisdiction) -> dict[str, dict[str, str]]:
    """Code -> name of every district, and of the streets this user can see units in (all 349 for
    the city: ~10 KB in the page, one look-up table for every popup)."""
    streets = Street.objects.all()
    if jurisdiction.level in {"district", "street"}:
        streets = streets.filter(district_id=jurisdiction.district)
    elif jurisdiction.level != "city":
        streets = streets.none()
    return {
        "districts": dict(District.objects.order_by("code").values_list("code", "name")),
        "streets": dict(streets.order_by("code").values_list("code", "name")),
    }
