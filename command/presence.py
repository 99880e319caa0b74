"""Proof of presence: did an assigned unit come near the task's place in the work window?

The assigned devices' fixes between dispatch and the check (arrival, or closure) are compared with
the task's point; the closest distance reached is kept, and a task whose units never came within
ONEMAP_PRESENCE_RADIUS_M (default 100 m) is flagged. No fixes at all is a flag too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

DEFAULT_RADIUS_M = 100.0

CLOSEST_SQL = """
SELECT min(ST_DistanceSphere(f.geom, t.geom)), count(*)
FROM command_task t, geo_positionfix f
WHERE t.id = %s AND f.device_id = ANY(%s) AND f.recorded_at >= %s AND f.recorded_at <= %s
"""


def radius_m() -> float:
    return float(getattr(settings, "ONEMAP_PRESENCE_RADIUS_M", DEFAULT_RADIUS_M))


@dataclass(frozen=True)
class Presence:
    closest_m: float | None
    fixes: int
    radius_m: float

    @property
    def flagged(self) -> bool:
        return self.closest_m is None or self.closest_m > self.radius_m

    def json(self) -> dict[str, Any]:
        return {"closest_m": None if self.closest_m is None else round(self.closest_m, 1), "fixes": self.fixes,
                "radius_m": self.radius_m, "flagged": self.flagged}


def check(task_id: int, device_ids: list[str], start: datetime, end: datetime) -> Presence:
    with connection.cursor() as cursor:
        cursor.execute(CLOSEST_SQL, [task_id, device_ids, start, end])
        closest, count = cursor.fetchone()
    return Presence(closest_m=closest, fixes=count, radius_m=radius_m())
