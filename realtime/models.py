"""Device credentials and pushes to field units. Positions themselves live in geo (PositionFix and
the latest-position columns of Officer/Vehicle)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.db import models

DEVICE_TOKEN_PREFIX = "dev_"


def hash_device_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class DeviceCredential(models.Model):
    """A secret a device (or a gateway) shows when it reports. Only the SHA-256 is stored.

    A device credential may report fixes of its own `device_id` only. A gateway credential (a
    vendor's vehicle-GPS platform, the simulator, a benchmark) may report for any known device:
    its `device_id` is just the gateway's name."""

    device_id = models.CharField(max_length=64, db_index=True)
    gateway = models.BooleanField(default=False)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{'gateway' if self.gateway else 'device'} {self.device_id}"

    @classmethod
    def new_raw_token(cls) -> str:
        return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(24)


class Push(models.Model):
    """A task or a map push for one device, kept until the device acknowledges it."""

    class Kind(models.TextChoices):
        TASK = "task", "任务 task"
        MAP_PUSH = "map_push", "地图推送 map push"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    payload = models.JSONField(default=dict)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True, help_text="First delivery to the device.")
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The redelivery query: a device's unacknowledged pushes.
            models.Index(fields=["device_id", "created_at"], name="push_unacked_idx",
                         condition=models.Q(acked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} -> {self.device_id}"
