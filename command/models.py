"""The dispatch domain: tasks (案件/任务) from intake to verified closure, their timeline, the
units assigned to them, the classification they are filed under, and the audit log.

Only `command.actions` writes these tables (the fixture loader bulk-loads history with COPY)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GistIndex

from command.workflow import WORKING_STATES
from geo.models import Community, District, GridCell, HotspotCategory, HotspotPoint, Street
from geo.models.fields import SRID, web_mercator_copy


class Category(models.Model):
    """A minor class of component (部件) or event (事件), after CJ/T 315 / the Beijing lists. Kept
    as data so a city can extend it (admin); the shipped list is `command/data/categories.json`."""

    class Kind(models.TextChoices):
        COMPONENT = "component", "部件 component"
        EVENT = "event", "事件 event"

    code = models.CharField(max_length=8, primary_key=True, help_text="kind letter + major(2) + minor(2)")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    major_code = models.CharField(max_length=2)
    major_name = models.CharField(max_length=32)
    minor_code = models.CharField(max_length=3)
    name = models.CharField(max_length=64)
    hotspot_category = models.CharField(max_length=24, choices=HotspotCategory.choices, blank=True,
                                        help_text="The hotspot ledger this class of problem belongs to.")
    deadline_hours = models.PositiveIntegerField(help_text="Working hours from dispatch to handled.")
    accept_minutes = models.PositiveIntegerField(default=30, help_text="Minutes to accept before escalation.")
    unit_kinds = models.CharField(max_length=32, default="officer",
                                  help_text="Comma-separated: officer, vehicle — who can handle it.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return f"{self.code} {self.major_name}/{self.name}"

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.unit_kinds.split(",") if k.strip())


class Task(models.Model):
    class Source(models.TextChoices):
        COMPLAINT = "complaint", "12345 诉求 complaint"
        PATROL = "patrol", "巡查上报 patrol report"
        VIDEO = "video", "视频/非现场发现 video detection"
        LEDGER = "ledger", "台账 ledger item"
        ASSIGNED = "assigned", "上级交办 assignment from above"

    class Level(models.TextChoices):
        STREET = "street", "街道 street"
        DISTRICT = "district", "区 district"
        CITY = "city", "市 city"

    number = models.CharField(max_length=20, unique=True)
    state = models.CharField(max_length=12)
    source = models.CharField(max_length=10, choices=Source.choices)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="tasks", db_index=False)
    description = models.TextField(blank=True)
    address = models.CharField(max_length=200, blank=True)
    geom = models.PointField(srid=SRID)
    geom_3857 = web_mercator_copy("geom", models.PointField)
    grid_cell = models.ForeignKey(GridCell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)
    community = models.ForeignKey(Community, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)
    street = models.ForeignKey(Street, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+", db_index=False)
    hotspot = models.ForeignKey(HotspotPoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField()
    filed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    accept_by = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    overdue = models.BooleanField(default=False)
    escalation = models.CharField(max_length=8, choices=Level.choices, default=Level.STREET)
    reworks = models.PositiveIntegerField(default=0)
    extensions = models.PositiveIntegerField(default=0)
    presence_flag = models.BooleanField(null=True, blank=True,
                                        help_text="True: the unit never came near the place in the work window.")
    presence_distance_m = models.FloatField(null=True, blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        # Every action rewrites a task's row in a new place (its state is indexed), so every index is
        # written again: the code columns carry plain b-tree indexes only (Django's defaults added a
        # varchar_pattern_ops twin to each, for LIKE 'x%', which nothing asks), and district, street
        # and category are served by the composite indexes they lead.
        indexes = [
            GistIndex(fields=["geom_3857"], name="task_geom3857_gist"),
            models.Index(fields=["state"], name="task_state"),
            models.Index(fields=["id"], name="task_working", condition=models.Q(state__in=sorted(WORKING_STATES))),
            models.Index(fields=["grid_cell"], name="task_grid_cell"),
            models.Index(fields=["community"], name="task_community"),
            models.Index(fields=["district", "state"], name="task_district_state"),
            models.Index(fields=["street", "state"], name="task_street_state"),
            models.Index(fields=["filed_at"], name="task_filed_at"),
            models.Index(fields=["category", "created_at"], name="task_category_created"),
        ]

    def __str__(self) -> str:
        return self.number


class Assignment(models.Model):
    """A unit (officer or vehicle) assigned to a task, and how it was picked."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    unit_kind = models.CharField(max_length=8)  # officer | vehicle
    unit_id = models.BigIntegerField()
    device_id = models.CharField(max_length=64)
    call_sign = models.CharField(max_length=32)
    assigned_at = models.DateTimeField()
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    recommended_rank = models.PositiveIntegerField(null=True, blank=True, help_text="1 = the first recommendation")
    override_reason = models.CharField(max_length=200, blank=True)
    push = models.ForeignKey("realtime.Push", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    active = models.BooleanField(default=True)

    class Meta:
        # The workload of a recommended unit (command.recommend) is counted from this index alone
        # (task_id is in it), and each task looked up in task_working (Task.Meta): with a year of
        # history a unit has dozens of assignments on record, and reading them and their tasks
        # from the tables was most of a recommendation's cost.
        indexes = [models.Index(fields=["unit_kind", "unit_id"], name="assignment_unit",
                                condition=models.Q(active=True), include=["task"])]


class TaskEvent(models.Model):
    """One step of a task's timeline: who, when, where (a field unit's position) and why."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16)
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, help_text="The user, or 'system' for jobs.")
    at = models.DateTimeField()
    geom = models.PointField(srid=SRID, null=True, blank=True, spatial_index=False)
    reason = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["task", "at"], name="taskevent_task_at")]


class Photo(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="photos")
    file = models.FileField(upload_to="tasks/%Y/%m/")
    content_type = models.CharField(max_length=32)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)


class IdempotencyKey(models.Model):
    """A create that was answered: a retry with the same key gets the same answer, not a second task."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    task = models.ForeignKey(Task, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key")]


class DispatchRule(models.Model):
    """Auto-dispatch (editable in the admin): tasks of a category in an area go to a team, nearest
    available unit first. The most specific matching rule wins (street over district over city)."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="rules")
    district = models.ForeignKey(District, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    street = models.ForeignKey(Street, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    team_street = models.ForeignKey(Street, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                    help_text="Pick units of this street's team; empty: the task's own street.")
    auto_file = models.BooleanField(default=True, help_text="File the task at intake.")
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.category_id} in {self.street_id or self.district_id or 'city'}"


class Duty(models.Model):
    """Whether a field unit is on duty. No row: on duty while it reports (the phone reports only
    while on duty)."""

    unit_kind = models.CharField(max_length=8)
    unit_id = models.BigIntegerField()
    on_duty = models.BooleanField(default=True)
    since = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit_kind", "unit_id"], name="duty_unit")]


class AuditEntry(models.Model):
    """全过程留痕: an append-only, hash-chained log of every dispatch action. Each entry's hash covers
    its content and the previous entry's hash, sealed into the chain after its transaction commits
    (command.audit, migration 0005); a trigger refuses UPDATE and DELETE (migration 0002)."""

    at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    content_hash = models.CharField(max_length=64, default="")
    # Set when the entry is sealed into the chain, after its transaction commits (command.audit).
    seq = models.BigIntegerField(null=True, unique=True)
    prev_hash = models.CharField(max_length=64, null=True)
    hash = models.CharField(max_length=64, unique=True, null=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "audit entries"
