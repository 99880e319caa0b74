"""What is placed on the map: hotspot points, cameras, and the field units (officers, vehicles)
with their latest position and a position history built for a high insert rate."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex, GistIndex

from geo.models.boundaries import District, GridCell, Street
from geo.models.fields import SRID, web_mercator_copy


class EnforcementUnit(models.Model):
    """One of the 20 enforcement units: 16 district bureaus plus the special-area units."""

    code = models.CharField(max_length=8, primary_key=True)
    name = models.CharField(max_length=64)
    district = models.ForeignKey(District, null=True, blank=True, on_delete=models.PROTECT,
                                 help_text="Empty for units that are not a district bureau.")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class HotspotCategory(models.TextChoices):
    STREET_VENDING = "street_vending", "无证摊贩 street vending"
    ILLEGAL_ADS = "illegal_ads", "非法小广告 illegal small ads"
    CONSTRUCTION_SITE = "construction_site", "施工工地 construction site"
    GAS_SAFETY = "gas_safety", "燃气安全 gas safety"
    GARBAGE = "garbage", "垃圾分类 garbage"
    UNDERGROUND_PIPELINE = "underground_pipeline", "地下管线 underground pipelines"
    SPILLED_MUCK = "spilled_muck", "渣土遗撒 spilled muck"
    OUTDOOR_BARBECUE = "outdoor_barbecue", "露天烧烤 outdoor barbecue"
    MAJOR_EVENT = "major_event", "重大活动保障 major-event security"


class Located(models.Model):
    """A point on the map inside the admin hierarchy (denormalised for scoping without joins)."""

    geom = models.PointField(srid=SRID)
    geom_3857 = web_mercator_copy("geom", models.PointField)
    grid_cell = models.ForeignKey(GridCell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    street = models.ForeignKey(Street, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class HotspotPoint(Located):
    """A point placed on the map (点位) and kept on a ledger (挂账) until fixed (销账)."""

    class Status(models.TextChoices):
        OPEN = "open", "在账 open"
        CLOSED = "closed", "已销账 closed"

    category = models.CharField(max_length=24, choices=HotspotCategory.choices)
    name = models.CharField(max_length=128)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    tags = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            GistIndex(fields=["geom_3857"], name="hotspot_geom3857_gist"),
            models.Index(fields=["district", "category"], name="hotspot_district_cat"),
            GinIndex(fields=["tags"], name="hotspot_tags_gin"),
        ]

    def __str__(self) -> str:
        return self.name


class Camera(Located):
    class Source(models.TextChoices):
        SELF_BUILT = "self_built", "自建 self-built"
        POLICE_SHARED = "police_shared", "公安共享 police-shared (雪亮工程)"
        CONSTRUCTION_SITE = "construction_site", "工地 construction-site (住建委)"

    class Status(models.TextChoices):
        ONLINE = "online", "在线 online"
        OFFLINE = "offline", "离线 offline"
        FAULT = "fault", "故障 fault"

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=128)
    source = models.CharField(max_length=20, choices=Source.choices)
    heading = models.FloatField(null=True, blank=True, help_text="Degrees clockwise from north.")
    fov = models.FloatField(null=True, blank=True, help_text="Horizontal field of view, degrees.")
    owner_unit = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ONLINE)
    stream_url = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            GistIndex(fields=["geom_3857"], name="camera_geom3857_gist"),
            models.Index(fields=["district", "source"], name="camera_district_source"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class FieldUnit(models.Model):
    """An officer or a vehicle: who it belongs to, its device, and its latest position."""

    unit = models.ForeignKey(EnforcementUnit, on_delete=models.PROTECT, related_name="+")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+")
    street = models.ForeignKey(Street, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    call_sign = models.CharField(max_length=32, unique=True)
    device_id = models.CharField(max_length=64, unique=True)
    # Latest position. Written only forwards in time (the realtime ingest guards on position_at).
    geom = models.PointField(srid=SRID, null=True, blank=True)
    geom_3857 = web_mercator_copy("geom", models.PointField)
    position_at = models.DateTimeField(null=True, blank=True)
    speed = models.FloatField(null=True, blank=True, help_text="m/s")
    heading = models.FloatField(null=True, blank=True, help_text="degrees clockwise from north")
    accuracy = models.FloatField(null=True, blank=True, help_text="metres")

    class Meta:
        abstract = True


class Officer(FieldUnit):
    name = models.CharField(max_length=32)
    badge = models.CharField(max_length=16, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            GistIndex(fields=["geom_3857"], name="officer_geom3857_gist"),
        ]

    def __str__(self) -> str:
        return f"{self.call_sign} {self.name}"


class Vehicle(FieldUnit):
    class Kind(models.TextChoices):
        PATROL_CAR = "patrol_car", "巡逻车 patrol car"
        VAN = "van", "执法车 enforcement van"
        TRUCK = "truck", "清运车 truck"
        E_BIKE = "e_bike", "电动车 e-bike"

    plate = models.CharField(max_length=16, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)

    class Meta:
        ordering = ["id"]
        indexes = [
            GistIndex(fields=["geom_3857"], name="vehicle_geom3857_gist"),
        ]

    def __str__(self) -> str:
        return f"{self.call_sign} {self.plate}"


class PositionFix(models.Model):
    """Every fix a device reported. Append-mostly and time-ordered: a BRIN index on the time keeps
    inserts cheap; (device, time) is unique so a repeated fix is a duplicate, not a second row."""

    device_id = models.CharField(max_length=64)
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField()
    geom = models.PointField(srid=SRID, spatial_index=False)
    speed = models.FloatField(null=True)
    heading = models.FloatField(null=True)
    accuracy = models.FloatField(null=True)
    battery = models.FloatField(null=True)

    class Meta:
        indexes = [BrinIndex(fields=["received_at"], name="positionfix_received_brin")]
        constraints = [
            models.UniqueConstraint(fields=["device_id", "recorded_at"], name="positionfix_device_time_uniq"),
        ]
