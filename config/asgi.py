"""ASGI entry point (the composition root): HTTP through Django, with signed tile URLs answered
by tiles' fast path and device ingest by realtime's in front of it; WebSockets (/ws/map,
/ws/field) through Channels.

    uvicorn config.asgi:application --workers N

WebSocket authentication: a bearer token (header or ?token=) or the session cookie; the origin
check refuses cross-site browser pages that would ride on a logged-in dispatcher's cookie."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.django_asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from config import logredact  # noqa: E402

logredact.install()  # uvicorn configured its loggers before loading this module, Django in the line above

from channels.auth import AuthMiddlewareStack  # noqa: E402

from config.bodylimit import BodyLimit  # noqa: E402
from config.http import DIRECT_ROUTES  # noqa: E402
from config.observe import TILE_ROUTE, MeteredRoute, MetricsASGI  # noqa: E402
from realtime.asgi import IngestFastPath  # noqa: E402
from realtime.auth import TokenAuthMiddleware, origin_checked  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from tiles.asgi import TileFastPath  # noqa: E402

tile_fast_path = TileFastPath(BodyLimit(django_asgi_app))
# OneMap's own server protocol (config.http) answers signed tile URLs below ASGI; any other ASGI
# server reaches the same fast path through the application.
DIRECT_ROUTES.append(MeteredRoute(tile_fast_path, TILE_ROUTE))  # measured as MetricsASGI measures the rest

application = ProtocolTypeRouter({
    "http": MetricsASGI(IngestFastPath(tile_fast_path)),
    "websocket": origin_checked(AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))),
})
