"""`Authorization: Bearer <token>` for API clients, beside Django's session login."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import ApiToken, hash_token


def user_for_token(raw: str):  # type: ignore[no-untyped-def]
    token = (
        ApiToken.objects.select_related("user", "user__profile")
        .filter(key_hash=hash_token(raw), user__is_active=True)
        .first()
    )
    if token is None or (token.expires_at and token.expires_at < timezone.now()):
        return None
    return token.user


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
