"""Headers on every answer (issue 14), the fast paths included; the cookies' Secure flag under
HTTPS; the WebSocket Origin check by scheme, host and port."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator

from accounts.jurisdiction import Jurisdiction
from config.asgi import application
from config.headers import PAGE_POLICY
from tests.live_server import running_server
from tests.tiles_support import CENTRE, login_as, tile_of
from tiles.auth import issue_token

ROOT = Path(__file__).resolve().parent.parent
Z12 = tile_of(*CENTRE, 12)


def assert_secured(headers: dict[str, str], page: bool = False) -> None:
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    if page:
        assert policy == PAGE_POLICY
        for directive in ("script-src 'self'", "worker-src 'self' blob:", "child-src blob:", "object-src 'none'"):
            assert directive in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    else:
        assert policy.startswith("default-src 'none'")


@pytest.mark.django_db
def test_django_answers_carry_the_headers(client) -> None:  # type: ignore[no-untyped-def]
    assert_secured(client.get("/login/"), page=True)
    assert_secured(client.get("/api/map/districts.geojson"))  # a 401 problem
    assert_secured(client.get("/static/frontend/map_app.js"), page=True)  # a script may run as a worker
    login_as(client, "commander")
    page = client.get("/console")  # `/` sends each role to its mode
    assert_secured(page, page=True)
    html = page.content.decode()
    # Nothing inline the policy would block: scripts come from files; the one JSON block is data.
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert html.count("<script ") == (html.count('<script src="') + html.count('<script type="module" src="')
                                      + html.count('<script id="map-config" type="application/json">'))


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock(), running_server() as base:
        yield base


def fetch(url: str, **kwargs) -> tuple[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    request = urllib.request.Request(url, **kwargs)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our own local server)
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.django_db
def test_the_fast_paths_answers_carry_the_headers(server) -> None:  # type: ignore[no-untyped-def]
    """The real server: a signed tile (config.http's direct route, below ASGI), a bad tile token
    (its problem), and a device ingest (realtime.asgi) all answer with the headers."""
    from django.contrib.auth import get_user_model

    commander = get_user_model().objects.get(username="commander").pk
    token = issue_token(commander, Jurisdiction("city"))
    status, headers = fetch(f"{server}/tiles/districts/{Z12[0]}/{Z12[1]}/{Z12[2]}.mvt?t={token}")
    assert status == 200
    assert_secured(headers)
    status, headers = fetch(f"{server}/tiles/districts/{Z12[0]}/{Z12[1]}/{Z12[2]}.mvt?t=forged")
    assert status == 403
    assert_secured(headers)
    status, headers = fetch(f"{server}/api/positions", data=b"[]", method="POST",
                            headers={"Content-Type": "application/json"})
    assert status == 401
    assert_secured(headers)


def test_cookies_are_secure_when_served_over_https(settings) -> None:
    assert not settings.SESSION_COOKIE_SECURE and not settings.CSRF_COOKIE_SECURE  # plain HTTP (the tests)
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "ONEMAP_HTTPS": "1"},
                            check=True)
    assert result.stdout.splitlines()[-1] == "True True"


def handshake(origin: str | None, host: str = "127.0.0.1:8000", scheme: str = "ws") -> bool:
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])

    async def connect() -> bool:
        socket = WebsocketCommunicator(application, "/ws/map", headers=headers)
        socket.scope["scheme"] = scheme
        connected, _ = await socket.connect(timeout=10)
        if connected:  # past the origin check, then refused as anonymous: closed 4401
            assert json.loads((await socket.receive_output(timeout=10))["text"])["error"] == "unauthorized"
            assert (await socket.receive_output(timeout=10))["code"] == 4401
        return bool(connected)

    return asyncio.run(connect())


@pytest.mark.django_db(transaction=False)
def test_websocket_origin_is_checked_by_scheme_host_and_port(settings) -> None:
    """Anonymous handshakes: the origin check answers before authentication (which closes an
    anonymous /ws/map after accepting it, so "accepted" here means "passed the origin check")."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://onemap.example"]
    settings.ALLOWED_HOSTS = ["127.0.0.1", "onemap.example"]
    assert handshake("http://127.0.0.1:8000")
    assert not handshake("http://127.0.0.1:8001"), "another port of the same host is another site"
    assert not handshake("https://127.0.0.1:8000"), "another scheme"
    assert not handshake("http://evil.example:8000")
    assert not handshake("http://127.0.0.1:8000", host="evil.example:8000"), "a Host not allowed"
    assert handshake("https://onemap.example"), "a trusted origin (a TLS proxy in front)"
    assert not handshake("https://onemap.example:8443")
    assert handshake("https://127.0.0.1:8443", host="127.0.0.1:8443", scheme="wss")
    assert not handshake("null") and not handshake("not a url")
    assert handshake(None), "programs send no Origin and authenticate with a token"
