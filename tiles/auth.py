"""Who asks for a tile: a session or bearer token (the usual way), or a signed tile token `?t=`.

MapLibre workers and QGIS fetch tiles by URL template, where a header or a cookie is awkward
(QGIS) or costs a session lookup per tile (three queries). So TileJSON and style.json put a
signed token in the tile URLs: the user id and jurisdiction, an expiry, and an HMAC with the
SECRET_KEY (django.core.signing). The expiry is rounded up to the hour, so the URLs a user gets
stay the same for an hour and the browser cache keeps working.

A valid signature is not enough (issue 14): the server caps the lifetime whatever expiry the token
claims, and the user it names must exist, be active and still have the token's jurisdiction. That
is looked up at most every ONEMAP_TILE_USER_CHECK_S per user and worker (one query, never per
tile), so a deactivation or a change of jurisdiction reaches tiles, TileJSON and style.json
renewals within that time (tiles/README.md)."""

from __future__ import annotations

import enum
import functools
import threading
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
    """The user of a well-signed token within its lifetime; no database (see check_user)."""
    user, expires = signed_user(token, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
    now = time.time() if now is None else now
    if expires < now:
        raise unauthorized("The tile token has expired. Fetch the TileJSON (or style.json) again.")
    if expires > now + settings.ONEMAP_TILE_TOKEN_MAX_AGE_S + ROUND_S:  # longer than issue_token ever gives
        raise Problem(403, "The tile token claims a lifetime beyond the server's limit.", title="Forbidden")
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


class Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN
# user id -> (the user's jurisdiction, or None if missing or inactive; when it was looked up)
_seen: dict[int, tuple[Jurisdiction | None, float]] = {}
_seen_lock = threading.Lock()


def remembered(user_id: int, stale_ok: bool = False) -> Jurisdiction | None | Unknown:
    """The user's jurisdiction (None: missing or inactive) as looked up within the last
    ONEMAP_TILE_USER_CHECK_S (or at any time, with stale_ok), else UNKNOWN."""
    seen = _seen.get(user_id)
    if seen is None or not stale_ok and time.monotonic() - seen[1] >= settings.ONEMAP_TILE_USER_CHECK_S:
        return UNKNOWN
    return seen[0]


def look_up_user(user_id: int) -> Jurisdiction | None:
    """The user's current jurisdiction, or None; remembered (one query: the fast path runs it in its pool)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.select_related("profile").filter(pk=user_id, is_active=True).first()
    current = Jurisdiction.of(user) if user is not None else None
    with _seen_lock:
        _seen[user_id] = (current, time.monotonic())
    return current


def check_user(user: TileUser, current: Jurisdiction | None) -> TileUser:
    """The token's user, if `current` (their jurisdiction now) says they may still use it."""
    if current is None:
        raise Problem(403, "The tile token's user does not exist or is not active.", title="Forbidden")
    if current != user.jurisdiction:
        raise Problem(403, "The user's jurisdiction changed. Fetch the TileJSON (or style.json) again.",
                      title="Forbidden")
    return user


def token_user(token: str) -> TileUser:
    """read_token, then the user's state (remembered, or looked up here: sync code only)."""
    user = read_token(token)
    current = remembered(user.user_id)
    return check_user(user, look_up_user(user.user_id) if current is UNKNOWN else current)


def forget_users() -> None:
    """Drop what is remembered (tests; a worker could call it on a signal)."""
    with _seen_lock:
        _seen.clear()


def tile_user(request: HttpRequest) -> TileUser:
    """The signed token if the URL has one, else the session or bearer user; else 401."""
    token = request.GET.get("t")
    if token is not None:
        return token_user(token)
    if not request.user.is_authenticated:
        raise unauthorized("Log in, send Authorization: Bearer <token>, or use the signed tile URLs of the TileJSON.")
    return TileUser(request.user.pk, Jurisdiction.of(request.user))
