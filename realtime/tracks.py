"""GET /api/tracks/<device_id>?from=<ISO time>&to=<ISO time>: where one unit went, from the position
history (geo.history.track reads only the daily partitions of the asked range). For dispatchers,
for devices in their jurisdiction, like the push API. Thin: validate, call, render."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse, JsonResponse

from config.problems import Problem, problem_view
from geo import history
from realtime.views import _check_device_in, _dispatcher, _method

# One request reads at most this span and returns at most this many fixes (a unit reporting
# every 10 s makes 8,640 a day); both are checked before the query runs.
MAX_SPAN = timedelta(days=2)
MAX_POINTS = 20_000


def _time(request: HttpRequest, name: str) -> datetime:
    raw = request.GET.get(name)
    if not raw:
        raise Problem(400, f"the {name} parameter (an ISO 8601 time with offset) is missing", reason="missing_time")
    try:
        at = datetime.fromisoformat(raw[:64])
    except ValueError:
        raise Problem(400, f"{name} is not an ISO 8601 time", reason="invalid_time") from None
    if at.tzinfo is None:
        raise Problem(400, f"{name} needs a time zone offset (e.g. +08:00 or Z)", reason="invalid_time")
    return at


@problem_view
def track(request: HttpRequest, device_id: str) -> HttpResponse:
    _method(request, "GET")
    jurisdiction = _dispatcher(request)
    start, end = _time(request, "from"), _time(request, "to")
    if end <= start:
        raise Problem(400, "to must be later than from", reason="invalid_range")
    if end - start > MAX_SPAN:
        raise Problem(400, f"a track covers at most {MAX_SPAN.days} days; ask in parts", reason="range_too_long")
    if len(device_id) > 64 or not device_id.isprintable():  # no such device; and NUL never reaches SQL
        raise Problem(404, f"no such device in your jurisdiction ({jurisdiction.label})")
    _check_device_in(jurisdiction, device_id)
    # One more than the limit tells whether the answer was cut.
    points = history.track(device_id, start, end, limit=MAX_POINTS + 1)
    truncated = len(points) > MAX_POINTS
    points = points[:MAX_POINTS]
    return JsonResponse({
        "device_id": device_id, "from": start.isoformat(), "to": end.isoformat(), "truncated": truncated,
        "fixes": [{"time": p.recorded_at.isoformat(), "lon": p.lon, "lat": p.lat, "speed": p.speed,
                   "heading": p.heading, "accuracy": p.accuracy} for p in points],
    })
