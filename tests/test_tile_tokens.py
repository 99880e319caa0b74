"""Tile tokens (issue 14): a well-signed token is not enough. Its lifetime is capped by the server
whatever it claims, the user it names must exist and be active with the token's jurisdiction,
and TileJSON/style.json renewals with ?t= check the same; a deactivation reaches tiles within
ONEMAP_TILE_USER_CHECK_S (here 0, through a settings override: no sleeping)."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import signing

from accounts.jurisdiction import Jurisdiction
from tests.tiles_support import (  # noqa: F401  (autouse fixtures)
    CENTRE,
    derived_tables,
    fresh_cache,
    login_as,
    tile_of,
)
from tiles import auth
from tiles.auth import SALT, issue_token

Z12 = tile_of(*CENTRE, 12)
LIVE_TILE = f"/tiles/officers,vehicles/{Z12[0]}/{Z12[1]}/{Z12[2]}.mvt"


def signed(payload: str) -> str:
    """What anyone holding the secret key could sign."""
    return signing.Signer(salt=SALT).sign(payload)


def user_id(username: str) -> int:
    return int(get_user_model().objects.get(username=username).pk)


@pytest.mark.django_db
def test_a_token_for_a_user_that_does_not_exist_reads_nothing(client) -> None:  # type: ignore[no-untyped-def]
    # The reproduction: user 0, city-wide, expiring in the year 2100 ...
    response = client.get(f"{LIVE_TILE}?t={signed('0~city~~~4102444800')}")
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    # ... and within an ordinary lifetime: still no such user.
    response = client.get(f"{LIVE_TILE}?t={issue_token(0, Jurisdiction('city'))}")
    assert response.status_code == 403 and "not active" in response.json()["detail"]


@pytest.mark.django_db
def test_the_server_caps_a_tokens_lifetime_whatever_it_claims(client, settings) -> None:  # type: ignore[no-untyped-def]
    commander = user_id("commander")
    far = int(time.time()) + settings.ONEMAP_TILE_TOKEN_MAX_AGE_S + 2 * auth.ROUND_S
    response = client.get(f"{LIVE_TILE}?t={signed(f'{commander}~city~~~{far}')}")
    assert response.status_code == 403 and "lifetime" in response.json()["detail"]
    assert client.get(f"{LIVE_TILE}?t={issue_token(commander, Jurisdiction('city'))}").status_code == 200
    settings.ONEMAP_TILE_TOKEN_MAX_AGE_S = 60  # lowering the setting shortens the tokens already out
    assert client.get(f"{LIVE_TILE}?t={issue_token(commander, Jurisdiction('city'), max_age_s=86400)}").status_code == 403


@pytest.mark.django_db
def test_a_token_names_its_users_jurisdiction(client) -> None:  # type: ignore[no-untyped-def]
    """A token signed for a wider jurisdiction than the user has (or had) is refused."""
    token = issue_token(user_id("dongcheng"), Jurisdiction("city"))
    assert client.get(f"{LIVE_TILE}?t={token}").status_code == 403
    token = issue_token(user_id("dongcheng"), Jurisdiction("district", "110101"))
    assert client.get(f"{LIVE_TILE}?t={token}").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("renewal", ["/tiles/officers,vehicles.json", "/tiles/style.json"])
def test_deactivation_cuts_tiles_and_renewal_within_the_check_time(client, settings, renewal) -> None:  # type: ignore[no-untyped-def]
    settings.ONEMAP_TILE_USER_CHECK_S = 3600
    login_as(client, "dongcheng")
    token = issue_token(user_id("dongcheng"), Jurisdiction("district", "110101"))
    client.logout()
    assert client.get(f"{LIVE_TILE}?t={token}").status_code == 200
    assert client.get(f"{renewal}?t={token}").status_code == 200
    get_user_model().objects.filter(username="dongcheng").update(is_active=False)
    # Within the check time the remembered state holds (the documented bound) ...
    assert client.get(f"{LIVE_TILE}?t={token}").status_code == 200
    # ... once it has passed, the tile and the renewal are refused.
    settings.ONEMAP_TILE_USER_CHECK_S = 0
    assert client.get(f"{LIVE_TILE}?t={token}").status_code == 403
    response = client.get(f"{renewal}?t={token}")
    assert response.status_code == 403 and "t=" not in response.content.decode()


@pytest.mark.django_db
def test_the_fast_path_checks_the_user_off_the_event_loop(settings, django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """tiles.asgi (what the server answers ?t= tiles with) refuses the forged token and a
    deactivated user; the lookup runs in its thread pool (its own connection, so the deactivation
    is committed here and undone afterwards)."""
    from django.db import connection as db

    from tests.test_tiles_http import asgi_get
    from tiles.asgi import TileFastPath

    async def unexpected(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError(scope["path"])

    settings.ONEMAP_TILE_USER_CHECK_S = 0
    app = TileFastPath(unexpected, threads=1, loop_connections=0)
    users = get_user_model().objects.filter(username="wall")
    token = issue_token(user_id("wall"), Jurisdiction("city"))
    try:
        assert asyncio.run(asgi_get(app, f"{LIVE_TILE}?t={signed('0~city~~~4102444800')}", {}))[0] == 403
        assert asyncio.run(asgi_get(app, f"{LIVE_TILE}?t={token}", {}))[0] == 200
        with django_db_blocker.unblock():
            app.pool.submit(lambda: users.update(is_active=False)).result()
        try:
            status, headers, _ = asyncio.run(asgi_get(app, f"{LIVE_TILE}?t={token}", {}))
            assert status == 403 and headers["content-type"] == "application/problem+json"
        finally:
            app.pool.submit(lambda: users.update(is_active=True)).result()
    finally:
        app.pool.submit(lambda: db.close()).result()
        app.pool.shutdown()


@pytest.mark.django_db
def test_the_real_server_refuses_the_forged_token_below_asgi(django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """The server answers ?t= tiles in its own protocol (config.http's direct route): the same refusals."""
    import urllib.error
    import urllib.request

    from tests.live_server import running_server

    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our own local server)
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    commander = user_id("commander")
    too_long = signed(f"{commander}~city~~~{int(time.time()) + 10 * 86400}")
    with django_db_blocker.unblock(), running_server() as base:
        assert status(f"{base}{LIVE_TILE}?t={signed('0~city~~~4102444800')}") == 403
        assert status(f"{base}{LIVE_TILE}?t={issue_token(0, Jurisdiction('city'))}") == 403
        assert status(f"{base}{LIVE_TILE}?t={too_long}") == 403
        assert status(f"{base}{LIVE_TILE}?t={issue_token(commander, Jurisdiction('city'))}") == 200


@pytest.mark.django_db
def test_the_fast_path_looks_a_user_up_once_for_a_burst_and_survives_a_database_outage(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    """A map view asks for many tiles at once: one lookup. When the lookup fails (the database is
    away), the last state known serves; a user never seen gets a 503 problem, not a 500."""
    from django.db import OperationalError
    from django.db import connection as db

    from tests.test_tiles_http import asgi_get
    from tiles import asgi as tiles_asgi
    from tiles.asgi import TileFastPath

    calls: list[int] = []
    look_up = tiles_asgi.look_up_in_pool

    def counted(user: int):  # type: ignore[no-untyped-def]
        calls.append(user)
        return look_up(user)

    monkeypatch.setattr(tiles_asgi, "look_up_in_pool", counted)

    async def unexpected(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError(scope["path"])

    app = TileFastPath(unexpected, threads=2, loop_connections=0)
    token = issue_token(user_id("wall"), Jurisdiction("city"))
    tiles = [f"/tiles/districts/12/{Z12[1] + dx}/{Z12[2]}.mvt?t={token}" for dx in range(8)]

    async def burst() -> list[int]:
        return [status for status, _, _ in await asyncio.gather(*(asgi_get(app, url, {}) for url in tiles))]

    def down(user: int):  # type: ignore[no-untyped-def]
        raise OperationalError("the database is away")

    try:
        assert asyncio.run(burst()) == [200] * 8
        assert calls == [user_id("wall")]
        monkeypatch.setattr(tiles_asgi, "look_up_in_pool", down)
        settings.ONEMAP_TILE_USER_CHECK_S = 0  # every tile would look up again
        assert asyncio.run(asgi_get(app, tiles[0], {}))[0] == 200  # the last known state serves
        stranger = issue_token(user_id("commander"), Jurisdiction("city"))
        status, headers, _ = asyncio.run(asgi_get(app, f"/tiles/districts/12/{Z12[1]}/{Z12[2]}.mvt?t={stranger}", {}))
        assert status == 503 and headers["retry-after"] and headers["content-type"] == "application/problem+json"
    finally:
        app.pool.submit(lambda: db.close()).result()
        app.pool.shutdown()
