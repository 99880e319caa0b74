"""A map widget for the Django admin that works offline.

Django's OSMWidget loads OpenLayers from a CDN and draws OpenStreetMap tiles; OneMap loads
nothing from the internet. This widget keeps Django's own MapWidget JS (gis/js/OLMapWidget.js),
serves OpenLayers from our npm copy, and replaces the tile base layer with our district
boundaries (a GeoJSON feed on the same server) drawn on a blank background."""

from __future__ import annotations

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
        js = ("vendor/ol/dist/ol.js", "gis/js/OLMapWidget.js")

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__()
        for key in ("default_lon", "default_lat", "default_zoom", "districts_url"):
            self.attrs[key] = getattr(self, key)
        if attrs:
            self.attrs.update(attrs)
