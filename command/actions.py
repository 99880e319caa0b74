"""The one write path of dispatch. Views, the job runner and commands call these and nothing else
writes tasks. `check_*` validates and raises a `DispatchError`; `do_*` changes state in one
transaction, appends the timeline event and the audit entry, and sends the change to screens (and
pushes to devices) after commit through `realtime.events.send_event`.

Whether an action is legal comes from the table in `command.workflow`; this module only carries
out what each action changes (the `APPLY` table below)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from command import audit, catalog, presence, taskrows, workflow
from command.actor import SYSTEM, Actor
from command.models import Assignment, IdempotencyKey, Photo, Task
from command.place import snap
from command.recommend import recommend
from command.serialize import task_summary
from command.workdays import add_working_hours
from config import metrics, prepared
from realtime import conf as rt_conf
from realtime.actions import do_send_push
from realtime.devices import UNIT_TABLES
from realtime.events import send_event

MAX_TEXT = 2000
MAX_REASON = 500
MAX_UNITS = 5
MAX_EXTENSION_HOURS = 400
DUPLICATE_RADIUS_M = 100.0
DUPLICATE_WINDOW = timedelta(hours=24)


class DispatchError(Exception):
    """An action that cannot be done: `status` is the HTTP status a client gets."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


def _not_found(task_id: Any) -> DispatchError:
    # The same answer whether the task is elsewhere or does not exist.
    return DispatchError(404, f"no task {task_id} in your jurisdiction")


# --- intake -------------------------------------------------------------------------------------


def _text(data: dict[str, Any], name: str, limit: int, required: bool = False) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or "\x00" in value:
        raise DispatchError(422, f"{name} must be text")
    value = value.strip()
    if len(value) > limit:
        raise DispatchError(422, f"{name} is longer than {limit} characters")
    if required and not value:
        raise DispatchError(422, f"{name} is required")
    return value


def _code(value: Any) -> str:
    """A category code as given, if it could be one (ASCII letters and digits); else ""."""
    return value if isinstance(value, str) and len(value) <= 8 and value.isascii() and value.isalnum() else ""


def _coordinate(data: dict[str, Any], name: str, low: float, high: float) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DispatchError(422, f"{name} must be a number")
    if not low <= value <= high:
        raise DispatchError(422, f"{name} {value} lies outside the service area")
    return float(value)


def check_create(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    if actor.role not in workflow.DISPATCHERS | workflow.FIELD | {SYSTEM}:
        raise DispatchError(403, "your role may not report tasks")
    west, south, east, north = rt_conf.get("SERVICE_AREA")
    lon = _coordinate(data, "lon", west, east)
    lat = _coordinate(data, "lat", south, north)
    source = data.get("source")
    if source not in Task.Source.values:
        raise DispatchError(422, f"source must be one of {', '.join(Task.Source.values)}")
    category = catalog.active_category(_code(data.get("category")))
    if category is None:
        raise DispatchError(422, "category must be the code of an active category (GET /api/categories)")
    place = snap(lon, lat, category.hotspot_category)
    if place.district is None:
        raise DispatchError(422, "the point lies outside every district of the city")
    # A field officer reports what they find wherever they are (joint work at borders); the task
    # goes to the place's jurisdiction.
    if actor.role not in workflow.FIELD and not actor.covers(place.district, place.street):
        raise DispatchError(403, f"the point lies outside your jurisdiction ({actor.jurisdiction.label})")
    return {"lon": lon, "lat": lat, "source": source, "category": category, "place": place,
            "description": _text(data, "description", MAX_TEXT), "address": _text(data, "address", 200)}


def request_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# Open tasks of the same category within the radius (in 3857, scaled by 1/cos(latitude)) and the
# window, nearest first, that the reporter may see. The task's own point and time come as
# parameters, not from a join on command_task: estimating the selectivity of a spatial join cost
# PostgreSQL more to plan (~2 ms) than the search itself. The scope (Actor.task_scope_sql) keeps a
# task across a district border out of the answer of a dispatcher who may not see it.
DUPLICATES_SQL = """
SELECT t.id FROM command_task t
WHERE t.id <> %s AND t.category_id = %s AND t.state = ANY(%s) AND t.created_at >= %s
  AND ST_DWithin(t.geom_3857, ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4490), 3857), %s / cos(radians(%s)))
  AND {scope}
ORDER BY t.geom_3857 <-> ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4490), 3857)
LIMIT 5"""
OPEN_STATES = [workflow.REPORTED, workflow.FILED, workflow.DISPATCHED, workflow.ACCEPTED, workflow.ON_SITE]


def possible_duplicates(actor: Actor, task: Task) -> list[Task]:
    """Open tasks of the same category near in place and time, in the actor's scope: offered for
    merging, nearest first."""
    scope, params = actor.task_scope_sql("t")
    lon, lat = task.geom.x, task.geom.y
    ids = [row[0] for row in prepared.fetch(DUPLICATES_SQL.format(scope=scope), [
        task.pk, task.category_id, OPEN_STATES, task.created_at - DUPLICATE_WINDOW, lon, lat, DUPLICATE_RADIUS_M, lat,
        *params, lon, lat])]
    found = {t.pk: t for t in taskrows.read(ids)}
    return [found[i] for i in ids if i in found]


def do_create(actor: Actor, data: dict[str, Any], idempotency_key: str | None = None,
              now: datetime | None = None) -> tuple[Task, bool]:
    """Intake. Returns the task and whether it was created now (False: an idempotent retry)."""
    if idempotency_key is not None and (not idempotency_key or len(idempotency_key) > 128):
        raise DispatchError(400, "Idempotency-Key must be 1 to 128 characters")
    checked = check_create(actor, data)
    now = now or timezone.now()
    with transaction.atomic():
        if idempotency_key and actor.user is not None:
            digest = request_hash(data)
            with connection.cursor() as cursor:
                # A concurrent retry waits here for the first request's commit, then finds its row.
                cursor.execute("INSERT INTO command_idempotencykey (user_id, key, request_hash, created_at)"
                               " VALUES (%s, %s, %s, now()) ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                               [actor.user_id, idempotency_key, digest])
                inserted = cursor.fetchone()
            if inserted is None:
                earlier = IdempotencyKey.objects.get(user=actor.user, key=idempotency_key)
                if earlier.request_hash != digest:
                    raise DispatchError(422, "this Idempotency-Key was used with a different request")
                assert earlier.task is not None
                return earlier.task, False
        place = checked["place"]
        [(task_id,)] = prepared.fetch("SELECT nextval(pg_get_serial_sequence('command_task', 'id'))", [])
        task = Task(
            id=task_id, number=f"T{now.astimezone(timezone.get_default_timezone()).year}-{task_id:07d}",
            state=workflow.REPORTED, source=checked["source"], category=checked["category"],
            description=checked["description"], address=checked["address"],
            geom=Point(checked["lon"], checked["lat"], srid=settings.ONEMAP_SRID),
            grid_cell_id=place.grid_cell, community_id=place.community, street_id=place.street,
            district_id=place.district, hotspot_id=place.hotspot_id, created_by_id=actor.user_id,
            created_at=now, updated_at=now,
            escalation=Task.Level.STREET if place.street else Task.Level.DISTRICT)
        prepared.insert(task)
        _record(actor, task, "create", "", workflow.REPORTED, now, data={"source": task.source})
        if idempotency_key and actor.user is not None:
            IdempotencyKey.objects.filter(user=actor.user, key=idempotency_key).update(task=task)
        _auto_dispatch(task, now)
    return task, True


def _auto_dispatch(task: Task, now: datetime) -> None:
    """Apply the most specific enabled rule of the task's category and place, if any."""
    rule = catalog.rule_for(task.category_id, task.district_id, task.street_id)
    if rule is None or not rule.auto_file:
        return
    system = Actor.system()
    _transition(system, task, "file", {}, now)
    team = rule.team_street_id or task.street_id
    candidates = [c for c in recommend(task.geom.x, task.geom.y, task.district_id, task.street_id,
                                       task.category.kinds, limit=50, now=now)
                  if team is None or c.street == team]
    if candidates:
        first = candidates[0]
        _transition(system, task, "dispatch", {"units": [{"kind": first.kind, "id": first.id}],
                                               "rule": rule.pk}, now)


# --- transitions --------------------------------------------------------------------------------


def check_action(actor: Actor, task: Task, action: str, data: dict[str, Any]) -> workflow.Transition:
    transition = workflow.BY_ACTION.get(action)
    if transition is None:
        raise DispatchError(404, f"unknown action {action[:32]!r}", actions=list(workflow.ACTIONS))
    if actor.role != SYSTEM and actor.role not in transition.roles:
        raise DispatchError(403, f"your role may not {action} tasks")
    if task.state not in transition.sources:
        raise DispatchError(409, f"a task in state {task.state} cannot be {action}ed", state=task.state,
                            allowed_actions=allowed_for(actor, task))
    if transition.who == workflow.ASSIGNEE and actor.role != SYSTEM and not _is_assignee(actor, task):
        raise DispatchError(403, "only a unit assigned to this task may do that")
    if transition.who == workflow.NOT_HANDLER and actor.role != SYSTEM and _handled_by(actor, task):
        raise DispatchError(403, "verification must be done by someone other than who handled the task")
    if transition.needs_reason:
        _text(data, "reason", MAX_REASON, required=True)
    return transition


def _is_assignee(actor: Actor, task: Task) -> bool:
    return actor.officer_id is not None and task.assignments.filter(
        active=True, unit_kind="officer", unit_id=actor.officer_id).exists()


def _handled_by(actor: Actor, task: Task) -> bool:
    if _is_assignee(actor, task):
        return True
    return task.events.filter(action="feedback", actor_id=actor.user_id).exists()


def allowed_for(actor: Actor, task: Task) -> list[str]:
    role = None if actor.role == SYSTEM else actor.role
    return workflow.allowed_actions(task.state, role)


def do_action(actor: Actor, task_id: int, action: str, data: dict[str, Any], *,
              expected_version: int | None = None, now: datetime | None = None) -> Task:
    """Take `action` on a task in the actor's jurisdiction: 404 outside it, 409 from a wrong state
    (or when `expected_version` is stale: someone else acted first)."""
    now = now or timezone.now()
    with transaction.atomic():
        task = taskrows.lock(actor, task_id)
        if task is None:
            raise _not_found(task_id)
        if expected_version is not None and task.version != expected_version:
            raise DispatchError(409, f"the task changed (version {task.version}); reload it", state=task.state,
                                version=task.version, allowed_actions=allowed_for(actor, task))
        _transition(actor, task, action, data, now)
    return task


def _transition(actor: Actor, task: Task, action: str, data: dict[str, Any], now: datetime) -> None:
    transition = check_action(actor, task, action, data)
    before = task_summary(task)
    from_state = task.state
    values = {f.attname: getattr(task, f.attname) for f in _MUTABLE_FIELDS}
    extra = APPLY.get(action, _nothing)(actor, task, data, now) or {}
    if transition.target is not None:
        task.state = transition.target
    task.version += 1
    task.updated_at = now
    # Only what the action changed is written (an UPDATE of every column cost the ORM and the
    # database several times as much, for the same row).
    taskrows.write(task, [f.name for f in _MUTABLE_FIELDS if getattr(task, f.attname) != values[f.attname]])
    reason = _text(data, "reason", MAX_REASON) if "reason" in data else ""
    _record(actor, task, action, from_state, task.state, now, reason=reason, data=extra, before=before,
            position=_position(data))


# The columns an action may change (the place, the number and the creation never change).
_MUTABLE_FIELDS = [f for f in Task._meta.concrete_fields
                   if f.name not in {"id", "number", "source", "geom", "geom_3857", "grid_cell", "community", "street",
                                     "district", "hotspot", "created_by", "created_at"}]


def _position(data: dict[str, Any]) -> Point | None:
    lon, lat = data.get("lon"), data.get("lat")
    if isinstance(lon, int | float) and isinstance(lat, int | float) and math.isfinite(lon) and math.isfinite(lat):
        west, south, east, north = rt_conf.get("SERVICE_AREA")
        if west <= lon <= east and south <= lat <= north:
            return Point(float(lon), float(lat), srid=settings.ONEMAP_SRID)
    return None


# The timeline event of an action, written out: one per action, and the ORM's insert (query
# building, the geometry and JSON adaptation) cost more than the statement.
EVENT_SQL = ("INSERT INTO command_taskevent (task_id, action, from_state, to_state, actor_id, actor_name, at, reason,"
             " data, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, ST_GeomFromEWKB(%s)) RETURNING id")


def _record(actor: Actor, task: Task, action: str, from_state: str, to_state: str, at: datetime, *,
            reason: str = "", data: dict[str, Any] | None = None, before: dict[str, Any] | None = None,
            position: Point | None = None) -> dict[str, Any]:
    metrics.count_dispatch_action(action)
    data = data or {}
    [(event_id,)] = prepared.fetch(EVENT_SQL, [task.pk, action, from_state, to_state, actor.user_id, actor.name, at,
                                               reason, json.dumps(data), None if position is None else bytes(position.ewkb)])
    event = {"id": event_id, "action": action, "from_state": from_state, "to_state": to_state, "actor": actor.name,
             "at": at.isoformat(), "reason": reason, "data": data,
             "lon": round(position.x, 7) if position else None, "lat": round(position.y, 7) if position else None}
    after = task_summary(task)
    audit.append(actor.name, action, "task", str(task.pk), before, after, at)
    send_event("task", {"action": action, "task": after, "event": event}, district=task.district_id)
    return event


def _nothing(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    return None


def _file(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    code = data.get("category")
    if code is not None:
        category = catalog.active_category(_code(code))
        if category is None:
            raise DispatchError(422, "category must be the code of an active category")
        task.category = category
    task.filed_at = now
    return {"category": task.category_id}


def _units(data: dict[str, Any]) -> list[tuple[str, int]]:
    units = data.get("units")
    if not isinstance(units, list) or not 1 <= len(units) <= MAX_UNITS:
        raise DispatchError(422, f'units is a list of 1 to {MAX_UNITS} {{"kind": "officer", "id": N}}')
    picked = []
    for unit in units:
        kind = unit.get("kind") if isinstance(unit, dict) else None
        unit_id = unit.get("id") if isinstance(unit, dict) else None
        if kind not in UNIT_TABLES or isinstance(unit_id, bool) or not isinstance(unit_id, int) \
                or not 0 < unit_id < 2**62:
            raise DispatchError(422, 'each unit is {"kind": "officer" | "vehicle", "id": N}')
        picked.append((kind, unit_id))
    return picked


def _assign(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    picked = _units(data)
    override = _text(data, "override_reason", MAX_REASON)
    ranking = {(c.kind, c.id): c.rank for c in recommend(task.geom.x, task.geom.y, task.district_id, task.street_id,
                                                          task.category.kinds, limit=50, now=now)}
    first_rank = ranking.get(picked[0])
    if first_rank != 1 and not override and actor.role != SYSTEM:
        raise DispatchError(422, "the pick is not the first recommendation: give an override_reason",
                            recommended_rank=first_rank)
    rows = {}
    for kind, table in UNIT_TABLES.items():
        ids = [unit_id for k, unit_id in picked if k == kind]
        if ids:
            found = prepared.fetch(f"SELECT id, device_id, call_sign FROM {table} WHERE id = ANY(%s)", [ids])  # noqa: S608
            rows.update({(kind, r[0]): r for r in found})
    missing = [f"{k} {i}" for k, i in picked if (k, i) not in rows]
    if missing:
        raise DispatchError(422, f"no such unit: {', '.join(missing)}")
    if task.dispatched_at is None:  # the deadline clock starts at the first dispatch; a reassign keeps it
        task.dispatched_at = now
        task.deadline = add_working_hours(now, task.category.deadline_hours)
    else:  # a reassignment: the units assigned before stand down
        task.assignments.filter(active=True).update(active=False)
    task.accept_by = now + timedelta(minutes=task.category.accept_minutes)
    assigned = []
    for kind, unit_id in picked:
        _, device_id, call_sign = rows[(kind, unit_id)]
        push = do_send_push(device_id, "task", _push_payload(task, "assigned"), created_by=actor.name,
                            device_known=True)
        assignment = Assignment(
            task=task, unit_kind=kind, unit_id=unit_id, device_id=device_id, call_sign=call_sign, assigned_at=now,
            assigned_by_id=actor.user_id, recommended_rank=ranking.get((kind, unit_id)),
            override_reason=override if ranking.get((kind, unit_id)) != 1 else "", push=push)
        prepared.insert(assignment)
        assigned.append({"kind": kind, "id": unit_id, "call_sign": call_sign, "rank": assignment.recommended_rank,
                         "push": str(push.pk)})
    return {"units": assigned, "override_reason": override, "deadline": task.deadline.isoformat() if task.deadline else None}


def _push_payload(task: Task, why: str) -> dict[str, Any]:
    return {"why": why, "task_id": task.pk, "number": task.number, "category": task.category.name,
            "description": task.description[:500], "address": task.address, "lon": task.geom.x, "lat": task.geom.y,
            "deadline": task.deadline.isoformat() if task.deadline else None}


def _accept(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> None:
    task.accepted_at = task.accepted_at or now


def _arrive(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    task.arrived_at = task.arrived_at or now
    return _check_presence(task, now)


def _check_presence(task: Task, until: datetime) -> dict[str, Any]:
    devices = list(task.assignments.filter(active=True).values_list("device_id", flat=True))
    result = presence.check(task.pk, devices, task.dispatched_at or task.created_at, until)
    task.presence_flag = result.flagged
    task.presence_distance_m = result.closest_m
    return {"presence": result.json()}


def _feedback(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    note = _text(data, "note", MAX_TEXT, required=True)
    photo_ids = data.get("photos", [])
    if not isinstance(photo_ids, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in photo_ids):
        raise DispatchError(422, "photos is a list of photo ids (POST /api/tasks/{id}/photos)")
    found = set(Photo.objects.filter(task=task, id__in=photo_ids).values_list("id", flat=True))
    if found != set(photo_ids):
        raise DispatchError(422, f"no such photo of this task: {sorted(set(photo_ids) - found)}")
    task.handled_at = now
    return {"note": note, "photos": sorted(found)}


def _verify(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    task.verified_at = now
    return {"note": _text(data, "note", MAX_TEXT)}


def _rework(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    task.reworks += 1
    task.handled_at = None
    task.accept_by = now + timedelta(minutes=task.category.accept_minutes)
    pushes = []
    for assignment in task.assignments.filter(active=True):
        push = do_send_push(assignment.device_id, "task", _push_payload(task, "rework"), created_by=actor.name)
        pushes.append(str(push.pk))
    return {"pushes": pushes}


def _close(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    task.closed_at = now
    return _check_presence(task, task.handled_at or now)


def _extend(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    hours = data.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_EXTENSION_HOURS:
        raise DispatchError(422, f"hours is a whole number of working hours, 1 to {MAX_EXTENSION_HOURS}")
    old = task.deadline
    task.deadline = add_working_hours(old or now, hours)
    task.extensions += 1
    task.overdue = task.deadline < now
    task.reminded_at = None
    return {"hours": hours, "old_deadline": old.isoformat() if old else None, "deadline": task.deadline.isoformat() if task.deadline else None}


def _merge(actor: Actor, task: Task, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    into_id = data.get("into")
    if isinstance(into_id, bool) or not isinstance(into_id, int) or into_id == task.pk:
        raise DispatchError(422, "into is the id of another task")
    into = actor.tasks().filter(id=into_id).exclude(state__in=workflow.FINAL_STATES).first()
    if into is None:
        raise DispatchError(422, f"no open task {into_id} in your jurisdiction to merge into")
    task.merged_into = into
    return {"into": into.pk, "into_number": into.number}


APPLY: dict[str, Callable[[Actor, Task, dict[str, Any], datetime], dict[str, Any] | None]] = {
    "file": _file, "dispatch": _assign, "reassign": _assign, "accept": _accept, "arrive": _arrive,
    "feedback": _feedback, "verify": _verify, "rework": _rework, "close": _close, "extend": _extend,
    "merge": _merge,
}
