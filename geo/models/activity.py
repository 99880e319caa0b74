"""A year of citizen complaints (12345 hotline) and enforcement cases, for hotspot analysis."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.indexes import BrinIndex

from geo.models.boundaries import District, GridCell, Street
from geo.models.fields import SRID
from geo.models.resources import HotspotCategory


class Complaint(models.Model):
    class Source(models.TextChoices):
        HOTLINE_12345 = "12345", "12345 热线 hotline"
        APP = "app", "随手拍 app"
        MEDIA = "media", "媒体 media"

    class Status(models.TextChoices):
        OPEN = "open", "办理中 open"
        CLOSED = "closed", "已办结 closed"

    received_at = models.DateTimeField()
    source = models.CharField(max_length=8, choices=Source.choices)
    category = models.CharField(max_length=24, choices=HotspotCategory.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    closed_at = models.DateTimeField(null=True)
    geom = models.PointField(srid=SRID)
    grid_cell = models.ForeignKey(GridCell, null=True, on_delete=models.SET_NULL, related_name="+")
    street = models.ForeignKey(Street, null=True, on_delete=models.PROTECT, related_name="+")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+")

    class Meta:
        indexes = [
            BrinIndex(fields=["received_at"], name="complaint_received_brin"),
            models.Index(fields=["district", "category"], name="complaint_district_cat"),
        ]


class EnforcementCase(models.Model):
    """An inspection (检查) or a penalty case (处罚), on site or off site (非现场)."""

    class Kind(models.TextChoices):
        INSPECTION = "inspection", "检查 inspection"
        PENALTY = "penalty", "处罚 penalty"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    category = models.CharField(max_length=24, choices=HotspotCategory.choices)
    occurred_at = models.DateTimeField()
    off_site = models.BooleanField(default=False)
    fine_yuan = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    geom = models.PointField(srid=SRID)
    grid_cell = models.ForeignKey(GridCell, null=True, on_delete=models.SET_NULL, related_name="+")
    street = models.ForeignKey(Street, null=True, on_delete=models.PROTECT, related_name="+")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+")

    class Meta:
        indexes = [
            BrinIndex(fields=["occurred_at"], name="case_occurred_brin"),
            models.Index(fields=["district", "category"], name="case_district_cat"),
        ]


class FixtureLoad(models.Model):
    """What `load_fixtures` put in the database: a checksum of the inputs, so a second load with
    the same inputs changes nothing."""

    name = models.CharField(max_length=32, primary_key=True)
    checksum = models.CharField(max_length=64)
    counts = models.JSONField(default=dict)
    loaded_at = models.DateTimeField(auto_now=True)
