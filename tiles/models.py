"""What the tile server keeps beside the source tables: a version per layer, and the derived
low-zoom tables (point clusters, generalised polygons) with the version they were built from.

None of these has a foreign key to a source table: they are derived data, rebuilt from the source
(tiles.derived), and `load_fixtures` must be free to TRUNCATE the sources."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GistIndex


class LayerVersion(models.Model):
    """Bumped by a statement-level trigger on the layer's source table (migration 0001), in the
    writer's transaction: a reader sees the new version exactly when it sees the new rows.

    The value is max(previous + 1, epoch milliseconds), so a version never repeats, not even after
    the database is rebuilt (a shared Redis cache may outlive the database)."""

    layer = models.CharField(max_length=32, primary_key=True)
    version = models.BigIntegerField()
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.layer} v{self.version}"


class DerivedState(models.Model):
    """The source version the derived rows of a layer (clusters or generalised polygons) were
    built from. Kept apart from LayerVersion so a rebuild never waits on a writer's row lock."""

    layer = models.CharField(max_length=32, primary_key=True)
    version = models.BigIntegerField()
    built_at = models.DateTimeField()
    rows = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.layer} built from v{self.version}"


class PointCluster(models.Model):
    """A cube of point counts per zoom and grid cell, split by every column a filter or the
    jurisdiction may narrow on, so a filtered or scoped low-zoom tile only sums rows. Columns that
    a layer does not split on hold ''."""

    layer = models.CharField(max_length=32)
    zoom = models.SmallIntegerField()
    cell_x = models.IntegerField()
    cell_y = models.IntegerField()
    district_id = models.CharField(max_length=6, default="")
    street_id = models.CharField(max_length=9, default="")
    category = models.CharField(max_length=24, default="")
    source = models.CharField(max_length=20, default="")
    status = models.CharField(max_length=8, default="")
    count = models.IntegerField()
    # Sums of the members' 3857 coordinates: the cluster is drawn at their mean.
    sum_x = models.FloatField()
    sum_y = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["layer", "zoom", "cell_x", "cell_y"], name="tiles_cluster_cell")]


class GeneralisedPolygon(models.Model):
    """A polygon simplified for one zoom (tolerance about one tile pixel), keyed by the source
    row's primary key so properties, filters and scoping still read the source row."""

    layer = models.CharField(max_length=32)
    zoom = models.SmallIntegerField()
    key = models.CharField(max_length=32)
    geom_3857 = models.MultiPolygonField(srid=3857)

    class Meta:
        indexes = [
            models.Index(fields=["layer", "zoom"], name="tiles_generalised_zoom"),
            GistIndex(fields=["geom_3857"], name="tiles_generalised_gist"),
        ]
