"""Who a user is on the map: a role and a jurisdiction (city, one district, or one street)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    CITY_COMMANDER = "city_commander", "指挥中心 city commander"
    DISTRICT_DISPATCHER = "district_dispatcher", "区调度员 district dispatcher"
    STREET_DISPATCHER = "street_dispatcher", "街道调度员 street dispatcher"
    FIELD_OFFICER = "field_officer", "执法队员 field officer"
    WALL_DISPLAY = "wall_display", "大屏 video-wall display"
    VERIFIER = "verifier", "核查员 verifier"


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(max_length=24, choices=Role.choices)
    # No district means the whole city; a street implies its district.
    district = models.ForeignKey("geo.District", null=True, blank=True, on_delete=models.PROTECT)
    street = models.ForeignKey("geo.Street", null=True, blank=True, on_delete=models.PROTECT)
    officer = models.OneToOneField("geo.Officer", null=True, blank=True, on_delete=models.SET_NULL,
                                   help_text="The field unit this account carries, for field officers.")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    def clean(self) -> None:
        if self.street_id and self.district_id and not str(self.street_id).startswith(str(self.district_id)):
            raise ValidationError({"street": "The street must lie in the profile's district."})
        if self.role in {Role.DISTRICT_DISPATCHER, Role.STREET_DISPATCHER, Role.FIELD_OFFICER} and not self.district_id:
            raise ValidationError({"district": "This role works inside a district."})
        if self.role == Role.STREET_DISPATCHER and not self.street_id:
            raise ValidationError({"street": "A street dispatcher works inside a street."})


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for API clients (scripts, QGIS). Only its SHA-256 is stored."""

    PREFIX = "om_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64, default="cli")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} / {self.name}"

    @classmethod
    def issue(cls, user: models.Model, name: str = "cli", days: int | None = None) -> tuple[ApiToken, str]:
        """A new token valid `days` (default ONEMAP_API_TOKEN_DAYS): a token that is never revoked
        by hand still ends (issue 14). The raw token is returned once; only its hash is kept."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        expires = timezone.now() + timedelta(days=settings.ONEMAP_API_TOKEN_DAYS if days is None else days)
        token = cls.objects.create(user=user, name=name, key_hash=hash_token(raw), expires_at=expires)
        return token, raw
