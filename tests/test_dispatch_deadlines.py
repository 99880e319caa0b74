"""Deadlines under a controlled clock: escalation when a task is not accepted in time, overdue
detection with escalation to the next level, one reminder before the deadline; and the working
calendar (official holidays and adjusted working days)."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest

from command.deadlines import do_sweep
from command.models import AuditEntry, Task
from command.workdays import TZ, add_working_hours, working_hours_between
from realtime.models import Push
from tests.dispatch_support import Dongcheng, dongcheng  # noqa: F401
from tests.test_dispatch_loop import act, dispatched

pytestmark = pytest.mark.django_db


def test_not_accepted_in_time_escalates_once(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = Task.objects.get(pk=dispatched(dongcheng)["id"])
    assert task.escalation == "street" and task.accept_by is not None
    # (The fixtures' history has open tasks of its own, long past their times: only ours is looked at.)
    assert task.pk not in do_sweep(task.accept_by - timedelta(seconds=1)).escalated
    report = do_sweep(task.accept_by + timedelta(seconds=1))
    assert task.pk in report.escalated
    task.refresh_from_db()
    assert task.escalation == "district" and task.accept_by is None
    event = task.events.get(action="escalate")
    assert event.actor_name == "system" and event.data["to"] == "district" and event.reason == "not accepted in time"
    assert AuditEntry.objects.filter(object_id=str(task.pk), action="escalate").count() == 1
    assert task.pk not in do_sweep(task.updated_at + timedelta(minutes=5)).escalated


def test_overdue_is_detected_and_escalated(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    task_id = dispatched(d)["id"]
    act(d, "officer1", task_id, "accept")
    task = Task.objects.get(pk=task_id)
    assert task.deadline is not None
    assert task_id not in do_sweep(task.deadline - timedelta(seconds=1)).overdue
    assert task_id in do_sweep(task.deadline + timedelta(seconds=1)).overdue
    task.refresh_from_db()
    assert task.overdue and task.escalation == "district"
    overdue = d.api("donghuamen", "get", "/api/tasks?overdue=true&limit=200").json()["items"]
    assert task_id in [t["id"] for t in overdue] and all(t["overdue"] for t in overdue)
    not_overdue = d.api("donghuamen", "get", "/api/tasks?overdue=false&limit=200").json()["items"]
    assert task_id not in [t["id"] for t in not_overdue]
    assert task_id not in do_sweep(task.deadline + timedelta(hours=1)).overdue  # once


def test_one_reminder_before_the_deadline(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    task_id = dispatched(d)["id"]
    act(d, "officer1", task_id, "accept")
    task = Task.objects.get(pk=task_id)
    assert task.deadline is not None
    early = task.deadline - timedelta(hours=30)
    assert task_id not in do_sweep(early).reminded or working_hours_between(early, task.deadline) <= 1.0
    near = task.deadline - timedelta(minutes=20)
    report = do_sweep(near)
    assert task_id in report.reminded
    reminders = Push.objects.filter(device_id=d.officer1.device_id, payload__why="reminder", payload__task_id=task_id)
    assert reminders.count() == 1
    assert task_id not in do_sweep(near + timedelta(minutes=5)).reminded
    assert reminders.count() == 1


def test_sweep_is_a_periodic_job_of_the_runner() -> None:
    from procrastinate.contrib.django import app

    assert "command.sweep_deadlines" in app.tasks
    periodic = [p.task.name for p in app.periodic_registry.periodic_tasks.values()]
    assert "command.sweep_deadlines" in periodic


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_working_hours_follow_the_official_calendar() -> None:
    # Thursday 2026-09-24 16:30 + 3 working hours: 1 h that day; Friday the 25th is the Mid-Autumn
    # holiday, then the weekend; 2 h more on Monday the 28th.
    assert add_working_hours(at(2026, 9, 24, 16, 30), 3) == at(2026, 9, 28, 11, 0)
    # 2026-09-30 17:00 + 1 h: half an hour that day, the rest after the National Day holiday (1-7 Oct).
    assert add_working_hours(at(2026, 9, 30, 17, 0), 1) == at(2026, 10, 8, 9, 30)
    # Saturday 2026-10-10 is an adjusted working day (调休): Friday 17:00 + 1 h ends on Saturday.
    assert add_working_hours(at(2026, 10, 9, 17, 0), 1) == at(2026, 10, 10, 9, 30)
    # The lunch break does not count.
    assert add_working_hours(at(2026, 12, 3, 11, 30), 1) == at(2026, 12, 3, 14, 0)
    assert working_hours_between(at(2026, 12, 3, 9, 0), at(2026, 12, 3, 17, 30)) == pytest.approx(7.0)
