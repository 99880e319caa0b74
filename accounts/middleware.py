"""`Authorization: Bearer <token>` for API clients, beside Django's session login."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import ApiToken, Profile, hash_token

# key hash -> (user or None, token expiry, when looked up (monotonic)). Every API request carries
# its token, and its look-up (token, user, profile: one joined statement through the ORM) was the
# largest single cost of a dispatch action after the action itself (bench/dispatch.py). A token's
# user is looked up again after ONEMAP_API_TOKEN_CHECK_S; a token deleted or a user saved in this
# process is forgotten at once (signals below), so `manage.py token --revoke` and a deactivation
# in the admin bite immediately here and within that bound in the other workers. Expiry is
# checked on every request against the remembered time.
_seen: dict[str, tuple[Any, datetime | None, float]] = {}
_seen_lock = threading.Lock()
MAX_REMEMBERED = 10_000


def user_for_token(raw: str):  # type: ignore[no-untyped-def]
    key = hash_token(raw)
    now = time.monotonic()
    with _seen_lock:
        seen = _seen.get(key)
    if seen is None or now - seen[2] >= settings.ONEMAP_API_TOKEN_CHECK_S:
        token = (
            ApiToken.objects.select_related("user", "user__profile")
            .filter(key_hash=key, user__is_active=True)
            .first()
        )
        seen = (token.user, token.expires_at, now) if token is not None else (None, None, now)
        with _seen_lock:
            if len(_seen) >= MAX_REMEMBERED:
                _seen.clear()
            _seen[key] = seen
    user, expires_at, _ = seen
    if user is None or (expires_at and expires_at < timezone.now()):
        return None
    return user


def forget_tokens(**_: Any) -> None:
    with _seen_lock:
        _seen.clear()


post_delete.connect(forget_tokens, sender=ApiToken, dispatch_uid="accounts.tokens.delete")
post_save.connect(forget_tokens, sender=ApiToken, dispatch_uid="accounts.tokens.save")
post_save.connect(forget_tokens, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.tokens.user")
post_save.connect(forget_tokens, sender=Profile, dispatch_uid="accounts.tokens.profile")


class BearerTokenMiddleware:
    """Authenticates a request that carries a bearer token; a wrong token is an anonymous request
    (the view then answers 401). Token requests skip CSRF: they carry no cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            from django.contrib.auth.models import AnonymousUser

            raw = header[7:].strip()
            # Only om_ tokens name a user; a device token (dev_, which the fix ingest checks
            # itself) or garbage costs no query.
            user = user_for_token(raw) if raw.startswith(ApiToken.PREFIX) else None
            request.user = user if user is not None else AnonymousUser()  # type: ignore[assignment]
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
            request.bearer_token_used = True  # type: ignore[attr-defined]
        return self.get_response(request)
