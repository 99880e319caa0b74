"""OGC API - Features at /ogc/. OGC clients (GDAL, QGIS) use paths without a trailing slash and do
not follow APPEND_SLASH redirects well, so each path matches with or without one."""

from django.urls import re_path

from geo.ogc import views

app_name = "ogc"

urlpatterns = [
    re_path(r"^$", views.landing, name="landing"),
    re_path(r"^api/?$", views.api, name="api"),
    re_path(r"^api\.html$", views.api_doc, name="api-doc"),
    re_path(r"^conformance/?$", views.conformance, name="conformance"),
    re_path(r"^collections/?$", views.collections, name="collections"),
    re_path(r"^collections/(?P<collection_id>[^/]+)/?$", views.collection, name="collection"),
    re_path(r"^collections/(?P<collection_id>[^/]+)/items/?$", views.items, name="items"),
    re_path(r"^collections/(?P<collection_id>[^/]+)/items/(?P<feature_id>[^/]+)/?$", views.feature, name="feature"),
    # Anything else under /ogc/ is a problem+json 404, not Django's HTML page.
    re_path(r"^(?P<rest>.+)$", views.not_found),
]
