"""Reads of the dispatch domain, always through `Actor.tasks()` (the jurisdiction scope)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from command import workflow
from command.actions import DispatchError, allowed_for
from command.actor import Actor
from command.models import Task
from command.recommend import recommend
from command.serialize import task_event_json, task_summary
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


def task_detail(actor: Actor, task_id: int, task: Task | None = None) -> dict[str, Any]:
    """A task with its timeline. `task`: the row an action has just written (and its caller read
    under the actor's scope), so it is not read again."""
    task = task if task is not None else _task(actor, task_id)
    row = _with_names(task, _names([task]))
    assignments = list(task.assignments.select_related("push").order_by("assigned_at", "id"))
    pushes = {a.push_id: a.push for a in assignments if a.push is not None}
    timeline = [task_event_json(e) for e in task.events.all()]
    # Delivery and acknowledgement of each push are part of the timeline: they are recorded on the
    # push itself (realtime), so they are merged in here rather than written twice.
    for a in assignments:
        push = pushes.get(a.push_id) if a.push_id else None
        if push is None:
            continue
        for what, at in (("push_delivered", push.delivered_at), ("push_acknowledged", push.acked_at)):
            if at is not None:
                timeline.append({"id": None, "action": what, "from_state": "", "to_state": "", "actor": a.call_sign,
                                 "at": at.isoformat(), "reason": "", "data": {"push": str(a.push_id)},
                                 "lon": None, "lat": None})
    timeline.sort(key=lambda e: e["at"])
    row["assignments"] = [{"kind": a.unit_kind, "id": a.unit_id, "call_sign": a.call_sign, "active": a.active,
                           "assigned_at": a.assigned_at.isoformat(), "recommended_rank": a.recommended_rank,
                           "override_reason": a.override_reason,
                           "push": None if a.push_id is None else {
                               "id": str(a.push_id),
                               "delivered_at": _iso(pushes[a.push_id].delivered_at) if a.push_id in pushes else None,
                               "acked_at": _iso(pushes[a.push_id].acked_at) if a.push_id in pushes else None}}
                          for a in assignments]
    row["timeline"] = timeline
    row["photos"] = list(task.photos.values_list("id", flat=True))
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
