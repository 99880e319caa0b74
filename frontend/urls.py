from django.urls import include, path

from frontend import api, pages, pwa, views

urlpatterns = [
    path("", pages.home, name="home"),
    path("wall", pages.wall, name="wall"),
    path("console", pages.console, name="console"),
    path("field", pages.field, name="field"),
    path("field/manifest.webmanifest", pwa.manifest, name="field-manifest"),
    # At the root so that its scope may be /field (a worker's scope cannot be above its own path).
    path("field-sw.js", pwa.service_worker, name="field-sw"),
    path("favicon.ico", pwa.favicon, name="favicon"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/map/search", api.search, name="map-search"),
    path("api/map/summary", api.summary, name="map-summary"),
    path("api/map/labels.geojson", api.labels, name="map-labels"),
    path("api/map/districts.geojson", views.districts_geojson, name="map-districts"),
    path("api/map/district-labels.geojson", views.district_labels_geojson, name="map-district-labels"),
]
