"""Shared field helpers: canonical CGCS2000 storage plus a database-maintained Web Mercator copy."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.gis.db.models.functions import Transform

SRID = 4490  # CGCS2000 geographic: the canonical storage system
WEB_SRID = 3857  # Web Mercator: the tile copy


def web_mercator_copy(source: str, field_class: type[models.GeometryField]) -> models.GeneratedField:
    """A STORED generated column ST_Transform(source, 3857): the database keeps it in step with
    the canonical geometry on every write (ORM, COPY or raw SQL), so tiles never transform rows at
    request time. CGCS2000 -> WGS84 is taken as the identity (they agree within centimetres)."""
    return models.GeneratedField(
        expression=Transform(source, WEB_SRID),
        output_field=field_class(srid=WEB_SRID, null=True),
        db_persist=True,
    )
