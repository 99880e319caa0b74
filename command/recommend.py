"""Who should go: the nearest eligible field units of a task, from their live positions.

PostGIS KNN (`<->` on the GiST-indexed `geom_3857`) finds the nearest candidates of each kind the
category needs; eligible means on duty (no off-duty record) and not stale (a fix within the stale
threshold of realtime). Each candidate gets its ground distance, the bearing from the unit to the
task, its current workload (active assignments on working tasks) and its area relative to the
task (same street, same district, or another district: neighbours are included but flagged).
The ranking score is distance plus a penalty per open task, so a near but busy unit can come
after a free one a little farther away."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from command.workflow import WORKING_STATES
from config import prepared
from realtime import conf
from realtime.devices import UNIT_LABELS, UNIT_TABLES

CANDIDATES_PER_KIND = 30
DEFAULT_LIMIT = 10
WORKLOAD_PENALTY_M = 400.0  # one open task counts like 400 m more to go

# The candidates per kind and the working states are literals, not parameters: the statement is
# prepared with a generic plan (config.prepared), and only a literal list lets PostgreSQL use the
# partial index of working tasks (task_working) when counting a unit's workload.
# The KNN ordering must compare with a constant (a parameter expression, not a column of a
# joined CTE) for PostgreSQL to walk the GiST index in distance order and stop after LIMIT; the
# duty check is a correlated scalar subquery, kept as a per-row filter so that it does not turn
# the index walk into a join and a sort. Exact distances are computed for the few rows kept.
KIND_SQL = """(
    SELECT '{kind}'::text AS kind, u.id, u.call_sign, u.{label}::text AS label, u.device_id, u.district_id,
           u.street_id, u.geom, u.position_at
    FROM {table} u
    WHERE u.geom_3857 IS NOT NULL AND u.position_at >= %(fresh)s
      AND coalesce((SELECT d.on_duty FROM command_duty d WHERE d.unit_kind = '{kind}' AND d.unit_id = u.id), TRUE)
    ORDER BY u.geom_3857 <-> ST_Transform(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490), 3857)
    LIMIT {k}
)"""

RECOMMEND_SQL = """
SELECT c.kind, c.id, c.call_sign, c.label, c.device_id, c.district_id, c.street_id, ST_X(c.geom), ST_Y(c.geom),
       c.position_at, ST_DistanceSphere(c.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490)) AS distance_m,
       (SELECT count(*) FROM command_assignment a JOIN command_task t ON t.id = a.task_id
        WHERE a.active AND a.unit_kind = c.kind AND a.unit_id = c.id AND t.state IN ({working})) AS workload
FROM ({union}) c
"""


def _sql(kinds: tuple[str, ...]) -> str:
    parts = [KIND_SQL.format(kind=kind, table=UNIT_TABLES[kind], label=UNIT_LABELS[kind], k=CANDIDATES_PER_KIND)
             for kind in kinds if kind in UNIT_TABLES]  # identifiers from the whitelist only
    return RECOMMEND_SQL.format(union=" UNION ALL ".join(parts),
                                working=", ".join(f"'{state}'" for state in sorted(WORKING_STATES)))


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


@dataclass(frozen=True)
class Candidate:
    rank: int
    kind: str
    id: int
    call_sign: str
    label: str
    district: str
    street: str | None
    lon: float
    lat: float
    position_at: str
    distance_m: float
    bearing_deg: float
    workload: int
    area: str  # same_street | same_district | other_district
    flagged: bool  # outside the task's responsible jurisdiction
    score: float

    def json(self) -> dict[str, Any]:
        return asdict(self)


def recommend(lon: float, lat: float, district: str, street: str | None, kinds: tuple[str, ...],
              limit: int = DEFAULT_LIMIT, now: datetime | None = None) -> list[Candidate]:
    now = now or timezone.now()
    if not kinds:
        return []
    rows = prepared.fetch(_sql(kinds), {
        "lon": lon, "lat": lat,
        "fresh": now - timedelta(seconds=conf.get("STALE_AFTER_S")),
    })
    found = []
    for kind, unit_id, call_sign, label, _device, u_district, u_street, u_lon, u_lat, at, dist, workload in rows:
        if street and u_street == street:
            area = "same_street"
        elif u_district == district:
            area = "same_district"
        else:
            area = "other_district"
        flagged = area != "same_street" if street else area == "other_district"
        found.append((dist + WORKLOAD_PENALTY_M * workload, kind, unit_id, call_sign, label, u_district, u_street,
                      u_lon, u_lat, at, dist, workload, area, flagged))
    found.sort(key=lambda r: (r[0], r[1], r[2]))
    return [Candidate(rank=i + 1, kind=kind, id=unit_id, call_sign=call_sign, label=label, district=u_district,
                      street=u_street, lon=round(u_lon, 7), lat=round(u_lat, 7), position_at=at.isoformat(),
                      distance_m=round(dist, 1), bearing_deg=round(bearing_deg(u_lon, u_lat, lon, lat), 1),
                      workload=workload, area=area, flagged=flagged, score=round(score, 1))
            for i, (score, kind, unit_id, call_sign, label, u_district, u_street, u_lon, u_lat, at, dist, workload,
                    area, flagged) in enumerate(found[:limit])]
