"""/api/tasks, /api/kpis and friends: thin views over command.actions (writes) and command.queries
(reads). One endpoint per workflow action, generated from the table in command.workflow."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from django.http import FileResponse, HttpRequest, HttpResponseBase
from ninja import Field, File, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile

from command import kpis, queries, workflow
from command.actions import DispatchError, do_action, do_create, possible_duplicates
from command.actor import Actor
from command.models import Category
from command.photos import do_add_photo, photo_for
from command.serialize import task_summary
from config.problems import Problem

router = Router(tags=["dispatch"])

# Identifiers as PostgreSQL's bigint holds them: a larger number is a 422, not a database error.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
PhotoId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _problem(error: DispatchError) -> Problem:
    titles = {409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content"}
    return Problem(error.status, error.detail, title=titles.get(error.status), **error.extra)


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user)


class TaskIn(Schema):
    lon: float
    lat: float
    category: str
    source: str
    description: str = ""
    address: str = ""


class UnitRef(Schema):
    kind: str
    id: Id


class ActionIn(Schema):
    """Every action takes the fields it needs (see the action's description); the rest are ignored."""

    reason: str | None = None
    note: str | None = None
    units: list[UnitRef] | None = None
    override_reason: str | None = None
    hours: Annotated[int, Field(ge=-MAX_ID, le=MAX_ID)] | None = None
    into: Id | None = None
    photos: list[Id] | None = None
    category: str | None = None
    lon: float | None = None
    lat: float | None = None
    version: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None


@router.get("/me", summary="Who am I: role, jurisdiction, unit")
def me(request: HttpRequest) -> dict[str, Any]:
    return queries.me(_actor(request))


@router.get("/categories", summary="The classification: components and events, major and minor classes")
def categories(request: HttpRequest) -> dict[str, Any]:
    return {"items": [{"code": c.code, "kind": c.kind, "major_code": c.major_code, "major_name": c.major_name,
                       "minor_code": c.minor_code, "name": c.name, "hotspot_category": c.hotspot_category,
                       "deadline_hours": c.deadline_hours, "accept_minutes": c.accept_minutes,
                       "unit_kinds": list(c.kinds)} for c in Category.objects.filter(active=True)]}


@router.get("/tasks", summary="Tasks in your jurisdiction, newest first (keyset pages)")
def list_tasks(request: HttpRequest, state: str = "", category: str = "", overdue: bool | None = None,
               district: str = "", street: str = "", q: str = "", limit: int = 50,
               before: Annotated[int, Query(ge=1, le=MAX_ID)] | None = None) -> dict[str, Any]:
    try:
        return queries.list_tasks(_actor(request), state=state, category=category, overdue=overdue,
                                  district=district, street=street, q=q, limit=limit, before=before,
                                  path=request.path)
    except DispatchError as error:
        raise _problem(error) from None


@router.post("/tasks", response={200: dict, 201: dict}, summary="Report a task (intake)",
             description="Send an `Idempotency-Key` header: a retried create returns the first answer (200) "
                         "instead of making a second task. Likely duplicates are offered for merging.")
def create_task(request: HttpRequest, body: TaskIn) -> Status:
    key = request.headers.get("Idempotency-Key")
    actor = _actor(request)
    try:
        task, created = do_create(actor, body.dict(), idempotency_key=key)
    except DispatchError as error:
        raise _problem(error) from None
    detail = queries.task_detail(actor, task.pk, task=task)
    detail["possible_duplicates"] = [task_summary(t) for t in possible_duplicates(actor, task)]
    return Status(201 if created else 200, detail)


@router.get("/tasks/{task_id}", summary="A task with its timeline, assignments and pushes")
def get_task(request: HttpRequest, task_id: TaskId) -> dict[str, Any]:
    try:
        return queries.task_detail(_actor(request), task_id)
    except DispatchError as error:
        raise _problem(error) from None


@router.get("/tasks/{task_id}/recommendations", summary="The nearest eligible units, ranked")
def recommendations(request: HttpRequest, task_id: TaskId, limit: int = 10) -> dict[str, Any]:
    try:
        return queries.recommendations(_actor(request), task_id, limit)
    except DispatchError as error:
        raise _problem(error) from None


@router.post("/tasks/{task_id}/photos", response={201: dict}, summary="Upload a photo (JPEG, PNG or WebP)")
def add_photo(request: HttpRequest, task_id: TaskId, file: File[UploadedFile]) -> Status:
    try:
        photo = do_add_photo(_actor(request), task_id, file)
    except DispatchError as error:
        raise _problem(error) from None
    return Status(201, {"id": photo.pk, "content_type": photo.content_type, "size": photo.size, "sha256": photo.sha256})


@router.get("/tasks/{task_id}/photos/{photo_id}", summary="A photo of a task")
def get_photo(request: HttpRequest, task_id: TaskId, photo_id: PhotoId) -> HttpResponseBase:
    try:
        photo = photo_for(_actor(request), task_id, photo_id)
    except DispatchError as error:
        raise _problem(error) from None
    return FileResponse(photo.file.open("rb"), content_type=photo.content_type)


def _version(request: HttpRequest, body: ActionIn) -> int | None:
    match = request.headers.get("If-Match", "").strip().strip('"').removeprefix("W/").strip('"')
    if match.isdigit() and len(match) < 19:  # isdigit() is also true of other scripts' digits: int() takes them
        return int(match)
    return body.version


def _action_view(action: str) -> Any:
    def view(request: HttpRequest, task_id: TaskId, body: ActionIn) -> dict[str, Any]:
        data = body.dict(exclude_none=True)
        if "units" in data:
            data["units"] = [dict(u) for u in data["units"]]
        data.pop("version", None)
        actor = _actor(request)
        try:
            task = do_action(actor, task_id, action, data, expected_version=_version(request, body))
            return queries.task_detail(actor, task_id, task=task)
        except DispatchError as error:
            raise _problem(error) from None

    view.__name__ = f"task_{action}"
    return view


for _t in workflow.TRANSITIONS:
    router.post(f"/tasks/{{task_id}}/{_t.action}", summary=_t.label,
                description=f"From {', '.join(sorted(_t.sources))} to {_t.target or 'the same state'}; "
                            f"roles: {', '.join(sorted(_t.roles))}" + ("; a reason is required" if _t.needs_reason
                                                                     else ""),
                operation_id=f"task_{_t.action}")(_action_view(_t.action))


@router.get("/kpis", summary="Dispatch KPIs per district, street or grid cell over a period")
def get_kpis(request: HttpRequest, start: date, end: date, level: str = "district", district: str = "",
             street: str = "") -> dict[str, Any]:
    try:
        return kpis.kpis_for(_actor(request), level=level, start=start, end=end, district=district, street=street)
    except DispatchError as error:
        raise _problem(error) from None


__all__ = ["router", "task_summary"]
