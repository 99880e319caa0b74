"""HTTP ingest (the batch API and the OsmAnd protocol) and the push API. Thin: parse the request,
call the action, render the result; every error is an RFC 9457 problem, never a 500."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.jurisdiction import Jurisdiction
from accounts.models import Role
from config import dbhealth, jsonparse
from config.dbthreads import keep_connection_fresh
from config.problems import Problem, problem_response, problem_view, unauthorized
from realtime import conf
from realtime.actions import PushInvalid, do_ingest_fixes, do_send_push
from realtime.devices import DeviceIdentity, authenticate_device, known_devices
from realtime.fixes import CRS_NAMES, DEVICE_ID_RE
from realtime.models import Push

KNOTS_TO_MPS = 0.514444  # OsmAnd / Traccar Client send speed in knots on the query string
DISPATCH_ROLES = {Role.CITY_COMMANDER, Role.DISTRICT_DISPATCHER, Role.STREET_DISPATCHER}


def _method(request: HttpRequest, *allowed: str) -> None:
    if request.method not in allowed:
        raise Problem(405, f"use {' or '.join(allowed)}", headers={"Allow": ", ".join(allowed)})


def _device(request: HttpRequest, query_token: str | None = None) -> DeviceIdentity:
    header = request.headers.get("Authorization", "")
    raw = header[7:].strip() if header[:7].lower() == "bearer " else query_token or request.GET.get("token")
    identity = authenticate_device(raw)
    if identity is None:
        raise Problem(401, "send a device token: Authorization: Bearer dev_... or ?token=dev_...",
                      headers={"WWW-Authenticate": 'Bearer realm="OneMap devices"'})
    return identity


def _body(request: HttpRequest) -> bytes:
    limit = conf.get("MAX_BATCH_BYTES")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise Problem(413, f"the body is larger than {limit} bytes", title="Content Too Large")
    try:
        return request.body
    except RequestDataTooBig:
        raise Problem(413, f"the body is larger than {limit} bytes", title="Content Too Large") from None


def _json(body: bytes, *, fixes: bool = False) -> Any:
    """The body through the shared parser (config.jsonparse): depth, numbers and strings limited.
    fixes: a NaN is one fix's error, not the batch's (parse_fix checks every number)."""
    try:
        return jsonparse.loads(body, allow_nan=fixes)
    except jsonparse.JsonInvalid as error:
        raise Problem(400, error.detail, reason=error.reason) from None


# Ingest runs on these threads, not on Django's per-request thread: a thread made for one
# request also opens a database connection for one request (ASGI), which cost ~40 ms a request;
# these threads keep theirs. realtime.asgi sends device requests here directly; through Django
# (the test client, a server without the fast path) the views below are async for that reason.
INGEST_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest")


def run_on_ingest_thread(view: Any, request: HttpRequest) -> HttpResponse:
    """A device request: a quick 503 with Retry-After while the database is away (the phone keeps
    the fix and sends it again), never a 500 after waiting for the pool."""
    if not dbhealth.available():
        return problem_response(dbhealth.unavailable())
    try:
        keep_connection_fresh()
        response: HttpResponse = view(request)
    except Exception as error:
        if dbhealth.note_failure(error):
            return problem_response(dbhealth.unavailable())
        raise
    return response


def _on_ingest_thread(view: Any) -> Any:
    run = sync_to_async(run_on_ingest_thread, thread_sensitive=False, executor=INGEST_THREADS)

    async def async_view(request: HttpRequest) -> HttpResponse:
        return await run(view, request)

    async_view.__name__ = async_view.__qualname__ = view.__name__
    async_view.__doc__ = view.__doc__
    return csrf_exempt(async_view)  # devices authenticate with tokens, never with cookies


@problem_view
def positions_view(request: HttpRequest) -> HttpResponse:
    """POST /api/positions: [fix, ...] or {"crs": "gcj02", "fixes": [fix, ...]}."""
    _method(request, "POST")
    identity = _device(request)
    if request.content_type != "application/json":
        raise Problem(415, "send Content-Type: application/json", title="Unsupported Media Type")
    data = _json(_body(request), fixes=True)
    crs = "wgs84"
    if isinstance(data, dict):
        crs = data.get("crs", "wgs84")
        data = data.get("fixes")
    if not isinstance(data, list):
        raise Problem(400, 'the body is a JSON array of fixes, or {"fixes": [...]}', reason="malformed_batch")
    if crs not in CRS_NAMES:
        raise Problem(400, f"crs must be one of {', '.join(CRS_NAMES)}", reason="invalid_crs")
    if len(data) > conf.get("MAX_BATCH_FIXES"):
        raise Problem(413, f"a batch holds at most {conf.get('MAX_BATCH_FIXES')} fixes; split it",
                      title="Content Too Large", reason="batch_too_large")
    report = do_ingest_fixes(data, identity, default_crs=crs)
    return JsonResponse(report.summary())


def _osmand_params(request: HttpRequest) -> tuple[dict[str, str], str | None]:
    """The query/form parameters of an OsmAnd request (Traccar Client up to 8, OsmAnd), and the
    token among them."""
    params = request.GET.dict()
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        params.update(request.POST.dict())
    return params, params.pop("token", None)


def _osmand_fixes(request: HttpRequest, params: dict[str, str]) -> list[dict[str, Any]]:
    """The fixes of an OsmAnd request: the parameters, or the JSON body of Traccar Client 9
    ({"device_id", "location": {...} or [...]})."""
    body = _body(request) if request.method == "POST" else b""
    if body.lstrip().startswith(b"{") or request.content_type == "application/json":
        data = _json(body, fixes=True)
        if not isinstance(data, dict):
            raise Problem(400, "the JSON body is an object", reason="malformed_json")
        locations = data.get("location")
        locations = locations if isinstance(locations, list) else [locations]
        fixes = []
        for location in locations:
            if not isinstance(location, dict):
                raise Problem(400, "location is an object with coords", reason="malformed_fix")
            coords = location.get("coords")
            if not isinstance(coords, dict):
                coords = {}
            battery = location.get("battery")
            if not isinstance(battery, dict):
                battery = {}
            level = battery.get("level")
            fixes.append({
                "device_id": data.get("device_id", params.get("id")), "time": location.get("timestamp"),
                "lon": coords.get("longitude"), "lat": coords.get("latitude"), "speed": coords.get("speed"),
                "heading": coords.get("heading"), "accuracy": coords.get("accuracy"),
                # transistorsoft reports the level 0..1 (and -1 when unknown)
                "battery": round(level * 100, 1) if isinstance(level, int | float) and 0 <= level <= 1 else None,
            })
        return fixes
    fix: dict[str, Any] = {k: params.get(k) for k in ("id", "lat", "lon", "timestamp", "bearing", "accuracy", "batt")}
    speed = params.get("speed")
    if speed not in (None, ""):
        try:
            fix["speed"] = float(speed) * KNOTS_TO_MPS
        except ValueError:
            fix["speed"] = speed  # parse_fix names the bad value
    if not fix.get("id"):
        raise Problem(400, "the id parameter (the device identifier) is missing", reason="missing_device_id")
    return [fix]


@problem_view
def osmand_view(request: HttpRequest) -> HttpResponse:
    """/ingest/osmand: the OsmAnd protocol, as the Traccar Client phone app speaks it. The token
    is checked before the body is read or parsed: an anonymous client gets a 401, never work."""
    _method(request, "GET", "POST")
    params, token = _osmand_params(request)
    identity = _device(request, token)
    fixes = _osmand_fixes(request, params)
    if not fixes:
        raise Problem(400, "no location in the request", reason="missing_coordinates")
    report = do_ingest_fixes(fixes, identity)
    for result in report.results:
        if result["status"] == "rejected":
            status = 403 if result["reason"] == "device_not_allowed" else 400
            raise Problem(status, result["detail"], reason=result["reason"], index=result["index"])
    # 200 means committed; a repeat of a stored fix is a success too, so the phone moves on.
    return JsonResponse({"status": report.results[0]["status"] if len(fixes) == 1 else "ok", **report.summary()})


positions = _on_ingest_thread(positions_view)
osmand = _on_ingest_thread(osmand_view)


# --- pushes -------------------------------------------------------------------------------------


def _dispatcher(request: HttpRequest) -> Jurisdiction:
    user = request.user
    if not user.is_authenticated:
        raise unauthorized()
    profile = getattr(user, "profile", None)
    if not user.is_superuser and (profile is None or profile.role not in DISPATCH_ROLES):
        raise Problem(403, "only dispatchers send pushes")
    return Jurisdiction.of(user)


def _device_in(jurisdiction: Jurisdiction, device_id: str) -> bool:
    device = known_devices([device_id]).get(device_id)
    return device is not None and (
        jurisdiction.level == "city"
        or jurisdiction.level == "district" and device.district == jurisdiction.district
        or jurisdiction.level == "street" and device.street == jurisdiction.street)


def _check_device_in(jurisdiction: Jurisdiction, device_id: str) -> None:
    if not _device_in(jurisdiction, device_id):  # the same answer whether elsewhere or missing
        raise Problem(404, f"no device {device_id} in your jurisdiction ({jurisdiction.label})")


def push_json(push: Push) -> dict[str, Any]:
    return {"id": str(push.id), "device_id": push.device_id, "kind": push.kind, "payload": push.payload,
            "created_at": push.created_at.isoformat(), "attempts": push.attempts,
            "delivered_at": push.delivered_at.isoformat() if push.delivered_at else None,
            "acked_at": push.acked_at.isoformat() if push.acked_at else None}


@problem_view
def pushes(request: HttpRequest) -> HttpResponse:
    """POST /api/pushes {"device_id", "kind": "task"|"map_push", "payload": {...}}."""
    _method(request, "POST")
    jurisdiction = _dispatcher(request)
    data = _json(_body(request))
    if not isinstance(data, dict) or not isinstance(data.get("device_id"), str):
        raise Problem(400, 'the body is {"device_id", "kind", "payload"}')
    if not DEVICE_ID_RE.fullmatch(data["device_id"]):
        raise Problem(400, "device_id is 1-64 printable ASCII characters without spaces", reason="invalid_device_id")
    _check_device_in(jurisdiction, data["device_id"])
    payload: Any = data.get("payload")  # unchecked JSON: do_send_push rejects anything but an object
    try:
        push = do_send_push(data["device_id"], data.get("kind", ""), payload,
                            created_by=request.user.get_username())
    except PushInvalid as error:
        raise Problem(400, str(error)) from None
    return JsonResponse(push_json(push), status=201)


@problem_view
def push_detail(request: HttpRequest, push_id: uuid.UUID) -> HttpResponse:
    _method(request, "GET")
    jurisdiction = _dispatcher(request)
    push = Push.objects.filter(id=push_id).first()
    # Another jurisdiction's push answers exactly as an unknown id: nothing tells that it exists.
    if push is None or not _device_in(jurisdiction, push.device_id):
        raise Problem(404, "no such push")
    return JsonResponse(push_json(push))
