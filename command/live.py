"""The tasks layer of /ws/map: the open tasks a screen starts from. Changes follow as `task`
messages (command.actions sends them after commit; realtime.hub routes them by place)."""

from __future__ import annotations

from typing import Any

from command import workflow
from command.actor import Actor
from command.serialize import task_summary

MAX_OPEN_TASKS = 2000


def open_tasks(user: Any, sub: Any) -> dict[str, Any]:
    """The newest open tasks the user may see, inside the subscription's scope and bbox."""
    tasks = Actor.of(user).tasks().filter(state__in=workflow.OPEN_STATES).filter(sub.scope.q())
    if sub.bbox is not None:
        west, south, east, north = sub.bbox
        from django.contrib.gis.geos import Polygon

        tasks = tasks.filter(geom__intersects=Polygon.from_bbox((west, south, east, north)))
    rows = list(tasks.select_related("category").order_by("-id")[:MAX_OPEN_TASKS + 1])
    return {"type": "tasks", "tasks": [task_summary(t) for t in rows[:MAX_OPEN_TASKS]],
            "truncated": len(rows) > MAX_OPEN_TASKS}
