"""GET /api/tracks/<device_id>: one unit's track from the partitioned history, for dispatchers in
whose jurisdiction the unit is; bad input is a 4xx problem, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from realtime import tracks
from realtime.actions import do_ingest_fixes
from tests.realtime_support import fix, in_db_thread, world  # noqa: F401 (world is a fixture)

pytestmark = pytest.mark.django_db


def get(token: str | None, path: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return in_db_thread(lambda: Client().get(path, headers=headers))


def url(device: str, start: datetime | str, end: datetime | str) -> str:
    as_text = [t.isoformat() if isinstance(t, datetime) else t for t in (start, end)]
    return f"/api/tracks/{device}?" + urlencode({"from": as_text[0], "to": as_text[1]})


def test_track_of_a_unit_for_its_dispatchers_only(world, monkeypatch):  # noqa: F811
    a1, a2 = world.officers["a1"].device_id, world.officers["a2"].device_id
    t0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    fixes = [fix(a1, 116.21 + i * 0.001, 39.81, t0 + timedelta(seconds=10 * i), speed=1.5) for i in range(5)]
    fixes.append(fix(a2, 116.26, 39.85, t0))  # another unit: not in a1's track
    fixes.append(fix(a1, 116.25, 39.85, t0 - timedelta(hours=1)))  # before the range
    report = in_db_thread(do_ingest_fixes, fixes, world.gateway)
    assert report.count("accepted") == len(fixes)

    answer = get(world.api_tokens["district_a"], url(a1, t0, t0 + timedelta(minutes=5)))
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["truncated"] is False
    assert [f["time"] for f in body["fixes"]] == [(t0 + timedelta(seconds=10 * i)).isoformat() for i in range(5)]
    assert body["fixes"][2]["lon"] == pytest.approx(116.212) and body["fixes"][0]["speed"] == 1.5
    assert len(get(world.api_tokens["city"], url(a1, t0, t0 + timedelta(minutes=5))).json()["fixes"]) == 5

    monkeypatch.setattr(tracks, "MAX_POINTS", 2)
    cut = get(world.api_tokens["street_a1"], url(a1, t0, t0 + timedelta(minutes=5))).json()
    assert cut["truncated"] is True and len(cut["fixes"]) == 2

    # Outside the jurisdiction answers like an unknown device; a field officer is no dispatcher.
    assert get(world.api_tokens["district_b"], url(a1, t0, t0 + timedelta(minutes=5))).status_code == 404
    assert get(world.api_tokens["street_a1"], url(a2, t0, t0 + timedelta(minutes=5))).status_code == 404
    assert get(world.api_tokens["officer_a1"], url(a1, t0, t0 + timedelta(minutes=5))).status_code == 403
    assert get(None, url(a1, t0, t0 + timedelta(minutes=5))).status_code == 401


@pytest.mark.parametrize(("start", "end", "status"), [
    (None, None, 400),                                            # missing
    ("yesterday", "today", 400),                                  # not times
    ("2026-12-01T00:00:00", "2026-12-01T10:00:00", 400),          # no offset
    ("2026-12-01T10:00:00+08:00", "2026-12-01T09:00:00+08:00", 400),  # backwards
    ("2026-12-01T00:00:00Z", "2026-12-05T00:00:00Z", 400),        # longer than the limit
    ("9" * 401, "2026-12-01T00:00:00Z", 400),                     # 401 digits
])
def test_bad_ranges_are_problems(world, start, end, status):  # noqa: F811
    a1 = world.officers["a1"].device_id
    path = f"/api/tracks/{a1}" if start is None else url(a1, start, end)
    answer = get(world.api_tokens["district_a"], path)
    assert answer.status_code == status
    assert answer["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("device", ["a%00b", "%ED%A0%80", "x" * 65])
def test_odd_device_ids_are_unknown_devices(world, device):  # noqa: F811
    path = f"/api/tracks/{device}?from=2026-12-01T00:00:00Z&to=2026-12-01T01:00:00Z"
    answer = get(world.api_tokens["city"], path)
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/problem+json"
