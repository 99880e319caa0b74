"""Dispatch KPIs (考核指标) per district, street or grid cell over a period: the one implementation
behind /api/kpis, the wall's panels and the bulletins.

Definitions (a period is [start, end] in Beijing dates, end inclusive):
- filed (立案数): tasks filed in the period.
- due (应结案数): tasks whose deadline falls in the period, except cancelled and merged ones.
- closed (结案数): due tasks that are closed.
- closure rate (结案率) = closed / due.
- on-time closure rate (按期结案率) = due tasks closed whose handling was done by the deadline / due.
- rework rate (返工率) = closed tasks sent back at least once / closed.
- extension rate (延期率) = due tasks extended at least once / due.
- mean hours to accept, to arrive (from dispatch) and to close (from filing), over tasks filed
  in the period.
- composite score = 100 × (0.40 on-time rate + 0.30 closure rate + 0.15 (1 − rework rate)
  + 0.15 (1 − extension rate)); no score when nothing was due.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from accounts.models import Role
from command.actions import DispatchError
from command.actor import Actor
from command.workdays import TZ
from geo.models import District, Street

LEVELS = {"district": "district_id", "street": "street_id", "grid": "grid_cell_id", "city": "NULL"}
WEIGHTS = {"on_time_rate": 0.40, "closure_rate": 0.30, "rework_rate": -0.15, "extension_rate": -0.15}
READERS = {Role.CITY_COMMANDER, Role.DISTRICT_DISPATCHER, Role.STREET_DISPATCHER, Role.WALL_DISPLAY, Role.VERIFIER}
MAX_DAYS = 400

KPI_SQL = """
SELECT {group} AS key,
       count(*) FILTER (WHERE filed_at >= %(s)s AND filed_at < %(e)s) AS filed,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND closed_at IS NOT NULL) AS closed,
       count(*) FILTER (WHERE due AND closed_at IS NOT NULL AND handled_at <= deadline) AS on_time,
       count(*) FILTER (WHERE due AND closed_at IS NOT NULL AND reworks > 0) AS reworked,
       count(*) FILTER (WHERE due AND extensions > 0) AS extended,
       avg(extract(epoch FROM accepted_at - dispatched_at) / 3600) FILTER (WHERE filed_at >= %(s)s AND filed_at < %(e)s)
           AS hours_to_accept,
       avg(extract(epoch FROM arrived_at - dispatched_at) / 3600) FILTER (WHERE filed_at >= %(s)s AND filed_at < %(e)s)
           AS hours_to_arrive,
       avg(extract(epoch FROM closed_at - filed_at) / 3600) FILTER (WHERE filed_at >= %(s)s AND filed_at < %(e)s)
           AS hours_to_close
FROM (
    SELECT t.*, (t.deadline >= %(s)s AND t.deadline < %(e)s AND t.state NOT IN ('cancelled', 'merged')) AS due
    FROM command_task t
    WHERE ((t.filed_at >= %(s)s AND t.filed_at < %(e)s) OR (t.deadline >= %(s)s AND t.deadline < %(e)s))
      AND {scope} {narrow}
) t
GROUP BY 1 ORDER BY 1
"""


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def row_kpis(key: str | None, filed: int, due: int, closed: int, on_time: int, reworked: int, extended: int,
             hours_to_accept: float | None, hours_to_arrive: float | None,
             hours_to_close: float | None) -> dict[str, Any]:
    rates = {"closure_rate": _rate(closed, due), "on_time_rate": _rate(on_time, due),
             "rework_rate": _rate(reworked, closed) if closed else (0.0 if due else None),
             "extension_rate": _rate(extended, due)}
    score = None
    if due:
        score = 100 * (WEIGHTS["on_time_rate"] * (rates["on_time_rate"] or 0)
                       + WEIGHTS["closure_rate"] * (rates["closure_rate"] or 0)
                       + -WEIGHTS["rework_rate"] * (1 - (rates["rework_rate"] or 0))
                       + -WEIGHTS["extension_rate"] * (1 - (rates["extension_rate"] or 0)))
    return {"key": key, "filed": filed, "due": due, "closed": closed, "on_time": on_time, "reworked": reworked,
            "extended": extended, **rates,
            "hours_to_accept": None if hours_to_accept is None else round(float(hours_to_accept), 2),
            "hours_to_arrive": None if hours_to_arrive is None else round(float(hours_to_arrive), 2),
            "hours_to_close": None if hours_to_close is None else round(float(hours_to_close), 2),
            "score": None if score is None else round(score, 1)}


def compute(level: str, start: dt.date, end: dt.date, scope_sql: str = "TRUE", scope_params: list[Any] | None = None,
            district: str = "", street: str = "") -> list[dict[str, Any]]:
    """KPI rows for one level; `scope_sql` comes from Jurisdiction.sql (bound parameters)."""
    group = LEVELS[level]
    s = dt.datetime.combine(start, dt.time(0), TZ)
    e = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), TZ)
    narrow = ""
    if district:
        narrow += " AND t.district_id = %(district)s"
    if street:
        narrow += " AND t.street_id = %(street)s"
    # The scope fragment uses %s placeholders: turn them into named ones for one parameter style.
    names = [f"scope{i}" for i in range(len(scope_params or []))]
    scope_named = scope_sql
    for name in names:
        scope_named = scope_named.replace("%s", f"%({name})s", 1)
    params = {"s": s, "e": e, "district": district, "street": street, **dict(zip(names, scope_params or [], strict=True))}
    with connection.cursor() as cursor:
        cursor.execute(KPI_SQL.format(group=group, scope=scope_named, narrow=narrow), params)  # noqa: S608
        return [row_kpis(*row) for row in cursor.fetchall()]


def kpis_for(actor: Actor, *, level: str, start: dt.date, end: dt.date, district: str = "",
             street: str = "") -> dict[str, Any]:
    if actor.role not in READERS:
        raise DispatchError(403, "KPIs are for dispatchers, verifiers and the wall")
    if level not in LEVELS:
        raise DispatchError(422, f"level is one of {', '.join(LEVELS)}")
    if end < start or (end - start).days > MAX_DAYS:
        raise DispatchError(422, f"the period runs forwards and spans at most {MAX_DAYS} days")
    for name, value, digits in (("district", district, 6), ("street", street, 9)):
        if value and not (value.isdigit() and len(value) == digits):
            raise DispatchError(422, f"{name} is a {digits}-digit code")
    scope_sql, scope_params = actor.jurisdiction.sql("t")
    rows = compute(level, start, end, scope_sql, scope_params, district, street)
    total = compute("city", start, end, scope_sql, scope_params, district, street)
    names: dict[str, str] = {}
    if level == "district":
        names = dict(District.objects.filter(code__in=[r["key"] for r in rows]).values_list("code", "name"))
    elif level == "street":
        names = dict(Street.objects.filter(code__in=[r["key"] for r in rows]).values_list("code", "name"))
    for row in rows:
        row["name"] = names.get(row["key"] or "", row["key"])
    empty = row_kpis(None, 0, 0, 0, 0, 0, 0, None, None, None)
    return {"level": level, "start": start.isoformat(), "end": end.isoformat(), "scope": actor.jurisdiction.label,
            "total": total[0] if total else empty, "items": rows}
