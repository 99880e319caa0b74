"""Who asks for a tile: a session or bearer token (the usual way), or a signed tile token `?t=`.

MapLibre workers and QGIS fetch tiles by URL template, where a header or a cookie is awkward
(QGIS) or costs a session lookup per tile (three queries). So TileJSON and style.json put a
signed token in the tile URLs: the user id and jurisdiction, an expiry, and an HMAC with the
SECRET_KEY (django.core.signing). Checking it needs no database. The expiry is rounded up to the
hour, so the URLs a user gets stay the same for an hour and the browser cache keeps working.

Consequence (documented in tiles/README.md): a token outlives a change of the user's jurisdiction
or a deactivation by at most ONEMAP_TILE_TOKEN_MAX_AGE_S."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.http import HttpRequest

from accounts.jurisdiction import Jurisdiction
from config.problems import Problem, unauthorized

SALT = "onemap.tiles.token"
ROUND_S = 3600
LEVELS = {"city", "district", "street", "none"}


@dataclass(frozen=True)
class TileUser:
    user_id: int
    jurisdiction: Jurisdiction


def issue_token(user_id: int, jurisdiction: Jurisdiction, now: float | None = None,
                max_age_s: int | None = None) -> str:
    max_age = settings.ONEMAP_TILE_TOKEN_MAX_AGE_S if max_age_s is None else max_age_s
    now = time.time() if now is None else now
    expires = -(-int(now + max_age) // ROUND_S) * ROUND_S
    payload = "~".join([str(user_id), jurisdiction.level, jurisdiction.district or "", jurisdiction.street or "",
                        str(expires)])
    return signing.Signer(salt=SALT).sign(payload)


def read_token(token: str, now: float | None = None) -> TileUser:
    user, expires = signed_user(token, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
    if expires < (time.time() if now is None else now):
        raise unauthorized("The tile token has expired. Fetch the TileJSON (or style.json) again.")
    return user


@functools.lru_cache(maxsize=4096)
def signed_user(token: str, key: str, fallbacks: tuple[str, ...]) -> tuple[TileUser, int]:
    """The user and expiry a token was signed with. A map view fetches dozens of tiles with one
    token, so a checked token is remembered: the HMAC and the parsing ran on every tile (~15 us
    of the event loop's time per tile). Keyed by the signing keys too, so a token signed with a
    key that is gone is checked (and refused) again; the expiry is compared on every use
    (read_token). Bad tokens raise and are not remembered."""
    del key, fallbacks  # only part of the cache key: Signer reads the same values from settings
    try:
        payload = signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature:
        raise Problem(403, "The tile token is not valid (bad signature). Fetch the TileJSON again.",
                      title="Forbidden") from None
    parts = payload.split("~")
    if len(parts) != 5 or parts[1] not in LEVELS or not parts[0].isdigit() or not parts[4].isdigit():
        raise Problem(403, "The tile token is malformed.", title="Forbidden")
    jurisdiction = Jurisdiction(parts[1], district=parts[2] or None, street=parts[3] or None)
    return TileUser(int(parts[0]), jurisdiction), int(parts[4])


def tile_user(request: HttpRequest) -> TileUser:
    """The signed token if the URL has one, else the session or bearer user; else 401."""
    token = request.GET.get("t")
    if token is not None:
        return read_token(token)
    if not request.user.is_authenticated:
        raise unauthorized("Log in, send Authorization: Bearer <token>, or use the signed tile URLs of the TileJSON.")
    return TileUser(request.user.pk, Jurisdiction.of(request.user))
