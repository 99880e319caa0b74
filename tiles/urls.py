"""/tiles/: vector tiles, TileJSON and the one map's style. Anything else under /tiles/ is a
problem+json 404 (not Django's HTML page), and so is a malformed z/x/y (checked in the view, so
a non-number is a 400 that says what is wrong instead of a bare 404)."""

from django.urls import path, re_path

from tiles import views

app_name = "tiles"

urlpatterns = [
    path("style.json", views.style, name="style"),
    re_path(r"^(?P<layers>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)\.mvt$", views.tile, name="tile"),
    re_path(r"^(?P<layers>[^/]+)\.json$", views.tilejson, name="tilejson"),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
