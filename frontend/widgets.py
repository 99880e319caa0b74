"""A map widget for the Django admin that works offline.

Django's OSMWidget loads OpenLayers from a CDN and draws OpenStreetMap tiles; OneMap loads
nothing from the internet. This widget keeps Django's own MapWidget JS (gis/js/OLMapWidget.js),
serves OpenLayers from our npm copy, and replaces the tile base layer with our district
boundaries (a GeoJSON feed on the same server) drawn on a blank background."""

from __future__ import annotations

from typing import Any

from django.contrib.gis.forms.widgets import OpenLayersWidget


class OfflineOpenLayersWidget(OpenLayersWidget):
    template_name = "frontend/offline_openlayers.html"
    # The map is drawn in Web Mercator; the widget converts to and from the field's SRID (4490)
    # with GDAL. CGCS2000 and WGS84 agree within centimetres, so the conversion is exact to
    # well under 1e-7 degrees.
    map_srid = 3857
    # An empty geometry opens on central Beijing.
    default_lon = 116.397
    default_lat = 39.909
    default_zoom = 10
    districts_url = "/api/map/districts.geojson"

    class Media:
        # Replace the parent's media, which points at a CDN, instead of adding to it.
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css", "frontend/admin_map.css")}
        js = ("vendor/ol/dist/ol.js", "gis/js/OLMapWidget.js")  # frontend/admin_map.js: in the template

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__()
        for key in ("default_lon", "default_lat", "default_zoom", "districts_url"):
            self.attrs[key] = getattr(self, key)
        if attrs:
            self.attrs.update(attrs)

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict[str, Any]:
        """Django's context, plus the options frontend/admin_map.js gives MapWidget (as JSON: no
        inline script, for the Content-Security-Policy)."""
        context = super().get_context(name, value, attrs)
        context["options_id"] = f"{context['id']}_options"
        context["widget_options"] = {
            "geom_name": context["geom_type"], "id": context["id"], "map_id": f"{context['id']}_map",
            "map_srid": context["map_srid"], "name": context["name"], "module": context["module"],
            "default_lon": self.default_lon, "default_lat": self.default_lat, "default_zoom": self.default_zoom,
            "districts_url": self.attrs["districts_url"],
        }
        return context
