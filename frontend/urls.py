from django.urls import path

from frontend import views

urlpatterns = [
    path("", views.one_map, name="one-map"),
    path("api/map/districts.geojson", views.districts_geojson, name="map-districts"),
    path("api/map/district-labels.geojson", views.district_labels_geojson, name="map-district-labels"),
]
