"""Who is acting on tasks, and which tasks they may see: the city commander everything, district
and street dispatchers and verifiers their jurisdiction, field officers only the tasks assigned to
their unit (and those they reported), the video wall reads its jurisdiction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.jurisdiction import Jurisdiction
from accounts.models import Role
from command.models import Assignment, Task

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    user: Any  # a Django user, or None for the job runner
    role: str
    jurisdiction: Jurisdiction
    officer_id: int | None = None

    @classmethod
    def of(cls, user: Any) -> Actor:
        profile = getattr(user, "profile", None)
        if profile is None:
            role = Role.CITY_COMMANDER if getattr(user, "is_superuser", False) else ""
            return cls(user, role, Jurisdiction.of(user))
        return cls(user, profile.role, Jurisdiction.of(user), profile.officer_id)

    @classmethod
    def system(cls) -> Actor:
        return cls(None, SYSTEM, Jurisdiction("city"))

    @property
    def name(self) -> str:
        return self.user.get_username() if self.user is not None else SYSTEM

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None

    def covers(self, district: str | None, street: str | None) -> bool:
        """Is a place with this district and street inside the actor's jurisdiction?"""
        j = self.jurisdiction
        return (j.level == "city" or j.level == "district" and district == j.district
                or j.level == "street" and street == j.street)

    def tasks(self) -> QuerySet[Task]:
        """Every task this actor may see (and so act on, subject to the workflow table)."""
        if self.role == SYSTEM:
            return Task.objects.all()
        if self.role == Role.FIELD_OFFICER:
            if self.officer_id is None:
                return Task.objects.none()
            mine = Assignment.objects.filter(task=OuterRef("pk"), active=True, unit_kind="officer",
                                             unit_id=self.officer_id)
            return Task.objects.filter(Q(Exists(mine)) | Q(created_by=self.user_id))
        if not self.role or self.jurisdiction.level == "none":
            return Task.objects.none()
        return Task.objects.filter(self.jurisdiction.q())

    def task_scope_sql(self, alias: str) -> tuple[str, list[Any]]:
        """`tasks()` as SQL with bound parameters, for statements written out (command.taskrows);
        tests/test_dispatch_scope.py holds the two to the same tasks for every role."""
        if self.role == SYSTEM:
            return "TRUE", []
        if self.role == Role.FIELD_OFFICER:
            if self.officer_id is None:
                return "FALSE", []
            # The alias comes from code, the values are bound.
            return (f"(EXISTS (SELECT 1 FROM command_assignment a WHERE a.task_id = {alias}.id AND a.active"  # noqa: S608
                    f" AND a.unit_kind = 'officer' AND a.unit_id = %s) OR {alias}.created_by_id = %s)",
                    [self.officer_id, self.user_id])
        if not self.role or self.jurisdiction.level == "none":
            return "FALSE", []
        return self.jurisdiction.sql(alias)
