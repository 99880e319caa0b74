"""Tasks as clients see them: one JSON shape for the API, the /ws/map events and the pushes."""

from __future__ import annotations

from typing import Any

from command import workflow
from command.models import Task


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def task_summary(task: Task) -> dict[str, Any]:
    """The fields a list, a map and the audit log need (no joins beyond the category)."""
    return {
        "id": task.pk, "number": task.number, "state": task.state,
        "state_label": workflow.STATE_LABELS.get(task.state, task.state),
        "source": task.source, "category": task.category_id, "category_name": task.category.name,
        "category_kind": task.category.kind, "description": task.description, "address": task.address,
        "lon": round(task.geom.x, 7), "lat": round(task.geom.y, 7), "district": task.district_id,
        "street": task.street_id, "community": task.community_id, "grid_cell": task.grid_cell_id,
        "hotspot": task.hotspot_id, "deadline": _iso(task.deadline), "accept_by": _iso(task.accept_by),
        "overdue": task.overdue, "escalation": task.escalation, "reworks": task.reworks,
        "extensions": task.extensions, "presence_flag": task.presence_flag,
        "presence_distance_m": task.presence_distance_m, "merged_into": task.merged_into_id,
        "created_at": _iso(task.created_at), "filed_at": _iso(task.filed_at),
        "dispatched_at": _iso(task.dispatched_at), "accepted_at": _iso(task.accepted_at),
        "arrived_at": _iso(task.arrived_at), "handled_at": _iso(task.handled_at),
        "verified_at": _iso(task.verified_at), "closed_at": _iso(task.closed_at),
        "version": task.version,
    }
