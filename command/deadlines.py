"""The periodic side of dispatch: reminders before a deadline, overdue detection, and escalation
street → district → city when a task is not accepted in time or goes overdue.

`do_sweep(now)` is idempotent and takes the time as a parameter, so tests drive it under a
controlled clock; in production the job runner calls it every minute (command/tasks.py). Each
change is a system action: it locks the task, records a timeline event and an audit entry, and
announces the task to the screens after commit, like any other action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from command import workflow
from command.actions import _push_payload, _record
from command.actor import Actor
from command.models import Task
from command.serialize import task_summary
from command.workdays import working_hours_between
from realtime.actions import do_send_push

# A reminder goes to the assigned units when this many working hours are left.
REMIND_BEFORE_HOURS = 1.0
NEXT_LEVEL = {Task.Level.STREET: Task.Level.DISTRICT, Task.Level.DISTRICT: Task.Level.CITY,
              Task.Level.CITY: Task.Level.CITY}
WORKING = list(workflow.WORKING_STATES)


@dataclass
class SweepReport:
    reminded: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    overdue: list[int] = field(default_factory=list)


def _one(task_id: int, now: datetime, still: Callable[[Task], bool], change: Callable[[Task], dict[str, Any]],
         action: str) -> bool:
    """Lock the task, re-check the condition on the locked row, apply the change and record it."""
    system = Actor.system()
    with transaction.atomic():
        task = Task.objects.select_for_update(of=("self",)).select_related("category").filter(id=task_id).first()
        if task is None or not still(task):
            return False
        before = task_summary(task)
        data = change(task)
        task.version += 1
        task.updated_at = now
        task.save()
        _record(system, task, action, task.state, task.state, now, reason=data.pop("reason", ""), data=data,
                before=before)
    return True


def _escalate(task: Task) -> str:
    task.escalation = NEXT_LEVEL[Task.Level(task.escalation)]
    return task.escalation


def do_sweep(now: datetime | None = None) -> SweepReport:
    now = now or timezone.now()
    report = SweepReport()

    # Not accepted in time: escalate once (later escalations come from the deadline).
    for task_id in Task.objects.filter(state=workflow.DISPATCHED, accept_by__lt=now).values_list("id", flat=True):
        def not_accepted(t: Task) -> bool:
            return t.state == workflow.DISPATCHED and t.accept_by is not None and t.accept_by < now

        def escalate_unaccepted(t: Task) -> dict[str, Any]:
            t.accept_by = None
            return {"to": _escalate(t), "reason": "not accepted in time"}

        if _one(task_id, now, not_accepted, escalate_unaccepted, "escalate"):
            report.escalated.append(task_id)

    # Overdue: the deadline passed while the unit was still working on it.
    for task_id in Task.objects.filter(state__in=WORKING, overdue=False, deadline__lt=now).values_list("id", flat=True):
        def is_overdue(t: Task) -> bool:
            return t.state in workflow.WORKING_STATES and not t.overdue and t.deadline is not None and t.deadline < now

        def mark_overdue(t: Task) -> dict[str, Any]:
            t.overdue = True
            return {"to": _escalate(t), "deadline": t.deadline.isoformat() if t.deadline else None,
                    "reason": "deadline passed"}

        if _one(task_id, now, is_overdue, mark_overdue, "overdue"):
            report.overdue.append(task_id)

    # Reminders: the deadline is near (in working hours) and no reminder went out yet.
    near = Task.objects.filter(state__in=WORKING, reminded_at__isnull=True, overdue=False, deadline__gt=now,
                               deadline__lte=now + timedelta(days=4)).values_list("id", "deadline")
    for task_id, deadline in near:
        if deadline is None or working_hours_between(now, deadline) > REMIND_BEFORE_HOURS:
            continue

        def needs_reminder(t: Task) -> bool:
            return t.state in workflow.WORKING_STATES and t.reminded_at is None and not t.overdue

        def remind(t: Task) -> dict[str, Any]:
            t.reminded_at = now
            pushes = [str(do_send_push(a.device_id, "task", _push_payload(t, "reminder"), created_by="system").pk)
                      for a in t.assignments.filter(active=True)]
            hours_left = working_hours_between(now, t.deadline) if t.deadline else 0.0
            return {"pushes": pushes, "hours_left": round(hours_left, 2)}

        if _one(task_id, now, needs_reminder, remind, "remind"):
            report.reminded.append(task_id)
    return report
