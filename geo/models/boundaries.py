"""The administrative hierarchy: district > street (or town) > community > unit grid cell.

Primary keys are the official codes (GB/T 2260 county code; 9-digit street; 12-digit community;
15-digit Beijing grid code), so every row names its parents without a join.
"""

from __future__ import annotations

import re

from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GistIndex
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from geo.models.fields import SRID, web_mercator_copy


class District(models.Model):
    code = models.CharField("GB/T 2260 code", max_length=6, primary_key=True,
                            validators=[RegexValidator(r"^1101\d\d$")])
    name = models.CharField(max_length=32)
    name_en = models.CharField(max_length=64, blank=True)
    geom = models.MultiPolygonField(srid=SRID)
    geom_3857 = web_mercator_copy("geom", models.MultiPolygonField)

    class Meta:
        ordering = ["code"]
        indexes = [GistIndex(fields=["geom_3857"], name="district_geom3857_gist")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Street(models.Model):
    """A street (街道), town (镇) or township (乡). Polygons are synthetic: no package ships them."""

    class Kind(models.TextChoices):
        STREET = "street", "街道"
        TOWN = "town", "镇"
        TOWNSHIP = "township", "乡"
        AREA = "area", "地区"

    code = models.CharField(max_length=9, primary_key=True, validators=[RegexValidator(r"^\d{9}$")])
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="streets")
    synthetic = models.BooleanField(default=True, help_text="The polygon is generated, not surveyed.")
    geom = models.MultiPolygonField(srid=SRID)
    geom_3857 = web_mercator_copy("geom", models.MultiPolygonField)

    class Meta:
        ordering = ["code"]
        indexes = [GistIndex(fields=["geom_3857"], name="street_geom3857_gist")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        if self.code and self.district_id and not self.code.startswith(str(self.district_id)):
            raise ValidationError({"code": "A street code starts with its district's code."})


class Community(models.Model):
    """A community (社区) or village (村): 12-digit code = street code + 3 digits."""

    code = models.CharField(max_length=12, primary_key=True, validators=[RegexValidator(r"^\d{12}$")])
    name = models.CharField(max_length=64)
    street = models.ForeignKey(Street, on_delete=models.PROTECT, related_name="communities")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="communities")
    synthetic = models.BooleanField(default=True)
    geom = models.MultiPolygonField(srid=SRID)
    geom_3857 = web_mercator_copy("geom", models.MultiPolygonField)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "communities"
        indexes = [GistIndex(fields=["geom_3857"], name="community_geom3857_gist")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


GRID_CODE_RE = re.compile(r"^(?P<county>1101\d\d)(?P<street>\d{3})(?P<community>\d{3})(?P<seq>\d{3})$")


def validate_grid_code(code: str) -> None:
    """The Beijing local 15-digit unit grid code: county(6) street(3) community(3) sequence(3)."""
    match = GRID_CODE_RE.match(code or "")
    if not match:
        raise ValidationError(f"{code!r} is not a 15-digit Beijing unit grid code")
    if match["seq"] == "000":
        raise ValidationError(f"{code!r}: the cell sequence starts at 001")


class GridCell(models.Model):
    """A unit grid cell (单元网格). Sequence numbers run west to east, north to south in the
    community."""

    code = models.CharField(max_length=15, primary_key=True, validators=[validate_grid_code])
    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="cells")
    street = models.ForeignKey(Street, on_delete=models.PROTECT, related_name="cells")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="cells")
    synthetic = models.BooleanField(default=True)
    geom = models.MultiPolygonField(srid=SRID)
    geom_3857 = web_mercator_copy("geom", models.MultiPolygonField)

    class Meta:
        ordering = ["code"]
        indexes = [
            GistIndex(fields=["geom_3857"], name="gridcell_geom3857_gist"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(code__regex=r"^1101\d{11}$"), name="gridcell_code_15_digits"),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        validate_grid_code(self.code)
        if self.community_id and not self.code.startswith(str(self.community_id)):
            raise ValidationError({"code": "A grid code starts with its community's code."})
