"""Reads of the dispatch domain, always through `Actor.tasks()` (the jurisdiction scope)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from command import workflow
from command.actions import DispatchError, allowed_for
from command.actor import Actor
from command.models import Task
from command.recommend import recommend
from command.serialize import task_summary
from config import prepared
from geo.names import division_names

MAX_PAGE = 200
CODE = re.compile(r"^\d{6,15}$")


def _names(tasks: list[Task]) -> dict[str, str]:
    return division_names([code for t in tasks for code in (t.district_id, t.street_id) if code])


def _with_names(task: Task, names: dict[str, str]) -> dict[str, Any]:
    row = task_summary(task)
    row["district_name"] = names.get(task.district_id, "")
    row["street_name"] = names.get(task.street_id or "", "")
    return row


def me(actor: Actor) -> dict[str, Any]:
    j = actor.jurisdiction
    names = division_names([code for code in (j.district, j.street) if code])
    return {"username": actor.name, "role": actor.role, "level": j.level, "district": j.district,
            "district_name": names.get(j.district or ""), "street": j.street, "street_name": names.get(j.street or ""),
            "officer": actor.officer_id}


def list_tasks(actor: Actor, *, state: str = "", category: str = "", overdue: bool | None = None,
               district: str = "", street: str = "", q: str = "", limit: int = 50, before: int | None = None,
               path: str = "/api/tasks") -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE:
        raise DispatchError(422, f"limit is 1 to {MAX_PAGE}")
    if any("\x00" in value for value in (state, category, district, street, q)):
        raise DispatchError(422, "a parameter holds a NUL character")
    tasks = actor.tasks().select_related("category")
    states = [s for s in state.split(",") if s]
    if any(s not in workflow.STATES for s in states):
        raise DispatchError(422, f"state is a comma-separated list of {', '.join(workflow.STATES)}")
    if states:
        tasks = tasks.filter(state__in=states)
    if category:
        tasks = tasks.filter(category_id=category[:8])
    if overdue is not None:
        tasks = tasks.filter(overdue=overdue)
    for name, value in (("district", district), ("street", street)):
        if value:
            if not CODE.match(value):
                raise DispatchError(422, f"{name} is a division code")
            tasks = tasks.filter(**{f"{name}_id": value})
    if q:
        q = q.strip()[:32]
        tasks = tasks.filter(number__icontains=q) if not q.isdigit() else tasks.filter(number__endswith=q.zfill(7))
    if before is not None:
        tasks = tasks.filter(id__lt=before)
    page = list(tasks.order_by("-id")[:limit + 1])
    more = len(page) > limit
    page = page[:limit]
    names = _names(page)
    params = {k: v for k, v in {"state": state, "category": category, "district": district, "street": street,
                                "q": q, "limit": limit}.items() if v}
    if overdue is not None:
        params["overdue"] = str(overdue).lower()
    next_url = f"{path}?{urlencode({**params, 'before': page[-1].pk})}" if more and page else None
    return {"items": [_with_names(t, names) for t in page], "next": next_url}


def _task(actor: Actor, task_id: int) -> Task:
    task = actor.tasks().select_related("category").filter(id=task_id).first()
    if task is None:
        raise DispatchError(404, f"no task {task_id} in your jurisdiction")
    return task


# The timeline, assignments and photos of one task, read by SQL written out: they are read after
# every action, and the ORM's query building and geometry objects cost more than the reads.
EVENTS_SQL = """
SELECT id, action, from_state, to_state, actor_name, at, reason, data::text, ST_X(geom), ST_Y(geom)
FROM command_taskevent WHERE task_id = %s ORDER BY at, id"""
ASSIGNMENTS_SQL = """
SELECT a.unit_kind, a.unit_id, a.call_sign, a.active, a.assigned_at, a.recommended_rank, a.override_reason,
       a.push_id, p.delivered_at, p.acked_at
FROM command_assignment a LEFT JOIN realtime_push p ON p.id = a.push_id
WHERE a.task_id = %s ORDER BY a.assigned_at, a.id"""
PHOTOS_SQL = "SELECT id FROM command_photo WHERE task_id = %s ORDER BY id"


def task_detail(actor: Actor, task_id: int, task: Task | None = None) -> dict[str, Any]:
    """A task with its timeline. `task`: the row an action has just written (and its caller read
    under the actor's scope), so it is not read again."""
    task = task if task is not None else _task(actor, task_id)
    row = _with_names(task, _names([task]))
    timeline = [{"id": pk, "action": action, "from_state": from_state, "to_state": to_state, "actor": actor_name,
                 "at": at.isoformat(), "reason": reason, "data": json.loads(data),
                 "lon": None if x is None else round(x, 7), "lat": None if y is None else round(y, 7)}
                for pk, action, from_state, to_state, actor_name, at, reason, data, x, y
                in prepared.fetch(EVENTS_SQL, [task.pk])]
    assignments = prepared.fetch(ASSIGNMENTS_SQL, [task.pk])
    photos = [pk for (pk,) in prepared.fetch(PHOTOS_SQL, [task.pk])]
    # Delivery and acknowledgement of each push are part of the timeline: they are recorded on the
    # push itself (realtime), so they are merged in here rather than written twice.
    for _kind, _unit, call_sign, _active, _at, _rank, _reason, push_id, delivered_at, acked_at in assignments:
        for what, at in (("push_delivered", delivered_at), ("push_acknowledged", acked_at)):
            if push_id is not None and at is not None:
                timeline.append({"id": None, "action": what, "from_state": "", "to_state": "", "actor": call_sign,
                                 "at": at.isoformat(), "reason": "", "data": {"push": str(push_id)},
                                 "lon": None, "lat": None})
    timeline.sort(key=lambda e: e["at"])
    row["assignments"] = [{"kind": kind, "id": unit_id, "call_sign": call_sign, "active": active,
                           "assigned_at": assigned_at.isoformat(), "recommended_rank": rank, "override_reason": reason,
                           "push": None if push_id is None else {
                               "id": str(push_id), "delivered_at": _iso(delivered_at), "acked_at": _iso(acked_at)}}
                          for kind, unit_id, call_sign, active, assigned_at, rank, reason, push_id, delivered_at, acked_at
                          in assignments]
    row["timeline"] = timeline
    row["photos"] = photos
    row["allowed_actions"] = allowed_for(actor, task)
    return row


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def recommendations(actor: Actor, task_id: int, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= 50:
        raise DispatchError(422, "limit is 1 to 50")
    task = _task(actor, task_id)
    found = recommend(task.geom.x, task.geom.y, task.district_id, task.street_id, task.category.kinds, limit=limit)
    return {"task": task.pk, "items": [c.json() for c in found]}
