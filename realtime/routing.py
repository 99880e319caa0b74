from django.urls import path

from realtime.consumers import FieldConsumer, MapConsumer

websocket_urlpatterns = [
    path("ws/map", MapConsumer.as_asgi()),
    path("ws/field", FieldConsumer.as_asgi()),
]
