"""The composition root of URLs: each domain contributes its own urls module. Django's error
views answer API paths with RFC 9457 problems (config.problems)."""

from django.contrib import admin
from django.urls import include, path

from config import health
from config.api import api
from config.observe import metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("ogc/", include("geo.ogc.urls")),
    path("tiles/", include("tiles.urls")),
    path("", include("accounts.urls")),
    path("", include("realtime.urls")),
    path("api/", api.urls),
    path("", include("frontend.urls")),
]

handler400 = "config.problems.bad_request"
handler403 = "config.problems.permission_denied"
handler404 = "config.problems.page_not_found"
handler500 = "config.problems.server_error"
