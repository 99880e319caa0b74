"""WebSocket authentication: a bearer token (header `Authorization: Bearer ...` or `?token=...`,
since browsers cannot set headers on a WebSocket) or, without one, the session cookie that
channels.auth.AuthMiddlewareStack has already resolved.

- A device token (dev_...) sets scope["device"] to a DeviceIdentity (the field app).
- Any other token is an API token of a user (accounts.ApiToken) and sets scope["user"].
- A token that is wrong leaves the connection anonymous; it does not fall back to the cookie."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from accounts.middleware import user_for_token
from config import dbhealth
from config.problems import Problem
from realtime.devices import authenticate_device
from realtime.models import DEVICE_TOKEN_PREFIX


def token_from_scope(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    return tokens[-1] if tokens else None


def _user_for_token(raw: str) -> Any:
    user = user_for_token(raw)
    if user is not None:
        getattr(user, "profile", None)  # load it here, not later in the event loop
    return user


CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the server cannot take the connection now


async def try_again_later(receive: Any, send: Any) -> None:
    """PostgreSQL is away: accept and close at once with 1013, so that the client reconnects later
    (a refused handshake would look like a permanent 403, an exception like a 500)."""
    if (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER, "reason": "database unavailable"})


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = token_from_scope(scope)
        scope = dict(scope, device=None)
        if raw:
            try:
                dbhealth.check()
                if raw.startswith(DEVICE_TOKEN_PREFIX):
                    scope["device"] = await database_sync_to_async(authenticate_device)(raw)
                    scope["user"] = AnonymousUser()
                else:
                    scope["user"] = await database_sync_to_async(_user_for_token)(raw) or AnonymousUser()
            except Exception as error:
                if isinstance(error, Problem) or dbhealth.note_failure(error):
                    return await try_again_later(receive, send)
                raise
        return await super().__call__(scope, receive, send)


DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host (lower case), port


def parse_origin(text: str) -> Origin | None:
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin of the page this server would have served: its scheme and its Host header
    (host and port), if that host is one of ALLOWED_HOSTS."""
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
    name, _ = split_domain_port(host)
    if not host or not validate_host(name, allowed_hosts()):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return parse_origin(f"{scheme}://{host}")


def allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def origin_allowed(scope: dict[str, Any]) -> bool:
    """A browser's handshake (it always sends Origin) must come from this server's own origin or
    one of CSRF_TRUSTED_ORIGINS: scheme, host AND port compared (a page on another port of the same
    host is another site's). No Origin: a program (the field app, devices, scripts), which
    authenticates with a token and carries no cookie to ride on."""
    raw = [v for k, v in scope.get("headers", []) if k == b"origin"]
    if not raw:
        return True
    origin = parse_origin(raw[-1].decode("latin-1"))
    if origin is None:
        return False
    trusted = {parse_origin(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    return origin == own_origin(scope) or origin in trusted


class OriginChecked:
    """Refuse WebSocket handshakes from pages of other sites (cross-site WebSocket hijacking rides
    on a dispatcher's cookie) with a 403, before any authentication."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)


def origin_checked(app: Any) -> OriginChecked:
    return OriginChecked(app)
