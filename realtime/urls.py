from django.urls import path

from realtime import tracks, views

urlpatterns = [
    path("api/positions", views.positions, name="positions"),
    path("ingest/osmand", views.osmand, name="osmand"),
    path("api/pushes", views.pushes, name="pushes"),
    path("api/pushes/<uuid:push_id>", views.push_detail, name="push-detail"),
    path("api/tracks/<str:device_id>", tracks.track, name="track"),
]
