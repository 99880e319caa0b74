"""Ingest: the batch API, the OsmAnd protocol (as Traccar Client sends it), idempotency, order,
coordinate systems, and every kind of bad input answered with a reason, never a 500."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from channels.testing import HttpCommunicator
from django.test import Client

from config.asgi import application
from geo.models import Officer, PositionFix, Vehicle
from tests.realtime_support import ago, fix, in_db_thread, run, world  # noqa: F401 (world is a fixture)

pytestmark = pytest.mark.django_db


def client_call(method: str, *args, **kwargs):  # type: ignore[no-untyped-def]
    """A request whose view runs (and commits) on the worker thread; see tests/realtime_support."""
    return in_db_thread(lambda: getattr(Client(), method)(*args, **kwargs))

TIANANMEN_WGS84 = (116.391349, 39.907375)
TIANANMEN_GCJ02 = (116.397590191, 39.908776294)
TIANANMEN_BD09 = (116.403963025, 39.915119834)


def post_batch(token: str | None, body: object, **headers: str):  # type: ignore[no-untyped-def]
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client_call("post", "/api/positions", data=data, content_type="application/json", **headers)


def test_batch_accepts_stores_and_moves_latest_forward(world):  # noqa: F811
    a1, v1 = world.officers["a1"].device_id, world.vehicles["a1"].device_id
    t0 = ago(30)
    body = {"fixes": [fix(a1, 116.21, 39.81, t0, speed=1.2, heading=90, accuracy=5, battery=80),
                      fix(a1, 116.22, 39.82, t0 + timedelta(seconds=10)),
                      fix(v1, 116.23, 39.83, t0, speed=8.5)]}
    response = post_batch(world.gateway_token, body)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3 and [r["status"] for r in response.json()["results"]] == ["accepted"] * 3
    assert PositionFix.objects.filter(device_id__in=[a1, v1]).count() == 3
    officer = Officer.objects.get(device_id=a1)
    assert (round(officer.geom.x, 6), round(officer.geom.y, 6)) == (116.22, 39.82)
    assert officer.position_at == t0 + timedelta(seconds=10)
    assert Vehicle.objects.get(device_id=v1).speed == 8.5


def test_duplicates_are_reported_not_stored_twice(world):  # noqa: F811
    a1 = world.officers["a1"].device_id
    at = ago(20)
    body = [fix(a1, 116.21, 39.81, at), fix(a1, 116.21, 39.81, at)]  # the same fix twice in one batch
    first = post_batch(world.gateway_token, body).json()
    assert [r["status"] for r in first["results"]] == ["accepted", "duplicate"]
    again = post_batch(world.gateway_token, body).json()  # a client retrying after a lost answer
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert PositionFix.objects.filter(device_id=a1).count() == 1


def test_out_of_order_fixes_are_stored_but_latest_never_goes_back(world):  # noqa: F811
    a1 = world.officers["a1"].device_id
    newer, older = ago(10), ago(60)
    assert post_batch(world.gateway_token, [fix(a1, 116.25, 39.85, newer)]).json()["accepted"] == 1
    assert post_batch(world.gateway_token, [fix(a1, 116.21, 39.81, older)]).json()["accepted"] == 1
    officer = Officer.objects.get(device_id=a1)
    assert officer.position_at == newer.replace(microsecond=newer.microsecond)
    assert round(officer.geom.x, 6) == 116.25
    assert PositionFix.objects.filter(device_id=a1).count() == 2


@pytest.mark.parametrize(("crs", "point"), [("gcj02", TIANANMEN_GCJ02), ("bd09", TIANANMEN_BD09)])
def test_web_map_coordinates_are_converted_to_wgs84(world, crs, point):  # noqa: F811
    a1 = world.officers["a1"].device_id
    response = post_batch(world.gateway_token, {"crs": crs, "fixes": [fix(a1, *point)]})
    assert response.json()["accepted"] == 1
    geom = PositionFix.objects.get(device_id=a1).geom
    assert math.isclose(geom.x, TIANANMEN_WGS84[0], abs_tol=1e-6) and math.isclose(geom.y, TIANANMEN_WGS84[1], abs_tol=1e-6)


def test_every_bad_fix_gets_a_reason_and_the_good_ones_are_kept(world):  # noqa: F811
    a1, b1 = world.officers["a1"].device_id, world.officers["b1"].device_id
    now = datetime.now(UTC)
    body = [
        fix(a1, 116.21, 39.81),  # good
        '{"not": "an object"}',
        {"time": now.isoformat(), "lon": 116.2, "lat": 39.8},
        fix(a1, 200.0, 39.8, now - timedelta(seconds=1)),
        {"device_id": a1, "time": now.isoformat(), "lon": "NaN", "lat": 39.8},
        fix(a1, 121.47, 31.23, now - timedelta(seconds=2)),  # Shanghai
        fix(a1, 0.0, 0.0, now - timedelta(seconds=3)),  # the classic GPS glitch
        fix(a1, 116.2, 39.8, now + timedelta(hours=8)),  # local time sent as UTC
        fix(a1, 116.2, 39.8, now - timedelta(days=400)),
        fix("NOBODY-CARRIES-THIS", 116.2, 39.8),
        {"device_id": a1, "time": "yesterday", "lon": 116.2, "lat": 39.8},
        fix(a1, 116.2, 39.8, now - timedelta(seconds=4), crs="utm"),
        fix(a1, 116.2, 39.8, now - timedelta(seconds=5), battery=180),
        fix(b1, 116.35, 39.85),  # good
    ]
    response = post_batch(world.gateway_token, body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(body)))
    assert [r.get("reason", r["status"]) for r in results] == [
        "accepted", "malformed_fix", "missing_device_id", "coordinates_out_of_range", "invalid_coordinates",
        "outside_service_area", "outside_service_area", "time_in_future", "too_old", "unknown_device",
        "invalid_time", "invalid_crs", "invalid_battery", "accepted"]
    assert all(r["detail"] for r in results if r["status"] == "rejected")
    assert PositionFix.objects.filter(device_id__in=[a1, b1]).count() == 2


def test_json_nan_literal_is_a_rejected_fix_not_a_crash(world):  # noqa: F811
    a1 = world.officers["a1"].device_id
    body = json.dumps([fix(a1, 0, 0, ago(1))]).replace('0.0, "lat": 0.0', 'NaN, "lat": Infinity').replace('0, "lat": 0', 'NaN, "lat": Infinity')
    response = post_batch(world.gateway_token, body)
    assert response.status_code == 200 and response.json()["results"][0]["reason"] == "invalid_coordinates"


def test_a_device_token_reports_only_its_own_device(world):  # noqa: F811
    a1, a2 = world.officers["a1"].device_id, world.officers["a2"].device_id
    response = post_batch(world.device_tokens[a1], [fix(a1, 116.21, 39.81), fix(a2, 116.26, 39.81)])
    assert [r.get("reason", r["status"]) for r in response.json()["results"]] == ["accepted", "device_not_allowed"]


@pytest.mark.parametrize(("token", "body", "content_type", "status"), [
    (None, [], "application/json", 401),
    ("dev_wrong", [], "application/json", 401),
    ("om_not_a_device_token", [], "application/json", 401),
    ("gateway", "{not json", "application/json", 400),
    ("gateway", '"a string"', "application/json", 400),
    ("gateway", '{"fixes": 3}', "application/json", 400),
    ("gateway", '{"crs": "utm", "fixes": []}', "application/json", 400),
    ("gateway", b"\xff\xfe", "application/json", 400),
    ("gateway", "[]", "text/plain", 415),
])
def test_bad_requests_are_problems(world, token, body, content_type, status):  # noqa: F811
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.gateway_token if token == 'gateway' else token}"} if token else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    response = client_call("post", "/api/positions", data=data, content_type=content_type, **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status and response.json()["detail"]
    # The server's fast path for device requests (realtime.asgi) answers the same.
    raw = [(b"content-type", content_type.encode())]
    if token:
        raw.append((b"authorization", headers["HTTP_AUTHORIZATION"].encode()))
    fast = asgi_call("POST", "/api/positions", data.encode() if isinstance(data, str) else data, raw)
    assert (fast["status"], fast["headers"]["content-type"]) == (status, "application/problem+json")
    assert json.loads(fast["body"]) == response.json()


def asgi_call(method: str, path: str, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    """A request through the server's whole ASGI application (config.asgi), as uvicorn passes it."""
    response = run(HttpCommunicator(application, method, path, body=body, headers=headers or []).get_response())
    response["headers"] = {k.decode(): v.decode() for k, v in response["headers"]}
    return response


def test_oversize_batches_and_wrong_methods_are_refused(world, settings):  # noqa: F811
    settings.ONEMAP_MAX_BATCH_FIXES = 3
    a1 = world.officers["a1"].device_id
    response = post_batch(world.gateway_token, [fix(a1, 116.21, 39.81, ago(i)) for i in range(4)])
    assert response.status_code == 413 and response.json()["reason"] == "batch_too_large"
    assert PositionFix.objects.filter(device_id=a1).count() == 0  # nothing of it stored
    fast = asgi_call("POST", "/api/positions", json.dumps([fix(a1, 116.21, 39.81, ago(i)) for i in range(4)]).encode(),
                     [(b"content-type", b"application/json"), (b"authorization", f"Bearer {world.gateway_token}".encode())])
    assert fast["status"] == 413 and json.loads(fast["body"])["reason"] == "batch_too_large"
    settings.ONEMAP_MAX_BATCH_BYTES = 100
    assert post_batch(world.gateway_token, [fix(a1, 116.21, 39.81)]).status_code == 413
    fast = asgi_call("POST", "/api/positions", b"[" + b" " * 200 + b"]", [(b"content-type", b"application/json")])
    assert fast["status"] == 413 and fast["headers"]["content-type"] == "application/problem+json"
    assert PositionFix.objects.filter(device_id=a1).count() == 0
    assert client_call("get", "/api/positions").status_code == 405
    fast = asgi_call("GET", "/api/positions")
    assert fast["status"] == 405 and fast["headers"]["allow"] == "POST"


# --- OsmAnd / Traccar Client ------------------------------------------------------------------


def traccar_client_request(token: str, device_id: str, timestamp: int, **overrides: str) -> HttpCommunicator:
    """Byte for byte what Traccar Client 8 (Android) sends: POST, the fix on the query string of
    the configured server URL (which carries our token), no body."""
    params = {"id": device_id, "timestamp": str(timestamp), "lat": "39.907375", "lon": "116.391349",
              "speed": "9.7192", "bearing": "271.0", "altitude": "44.0", "accuracy": "12.0", "batt": "87.0",
              "charge": "true", **overrides}
    query = f"token={token}&" + "&".join(f"{k}={v}" for k, v in params.items())
    return HttpCommunicator(application, "POST", "/ingest/osmand?" + query, body=b"", headers=[
        (b"host", b"127.0.0.1:8000"), (b"user-agent", b"Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A)"),
        (b"content-length", b"0"), (b"accept-encoding", b"gzip")])


def test_traccar_client_request_is_stored(world):  # noqa: F811
    device = world.officers["a1"].device_id
    at = int(ago(5).timestamp())
    response = run(traccar_client_request(world.device_tokens[device], device, at).get_response())
    assert response["status"] == 200, response["body"]
    stored = PositionFix.objects.get(device_id=device)
    assert stored.recorded_at == datetime.fromtimestamp(at, UTC)
    assert math.isclose(stored.speed, 5.0, rel_tol=1e-3)  # 9.7192 knots
    assert (stored.heading, stored.accuracy, stored.battery) == (271.0, 12.0, 87.0)
    # The phone retries when an answer is lost: the repeat is a success, so its queue moves on.
    again = run(traccar_client_request(world.device_tokens[device], device, at).get_response())
    assert again["status"] == 200 and json.loads(again["body"])["status"] == "duplicate"
    assert PositionFix.objects.filter(device_id=device).count() == 1


def test_traccar_client_9_json_body(world):  # noqa: F811
    device = world.vehicles["a1"].device_id
    body = {"location": {"timestamp": ago(3).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                         "coords": {"latitude": 39.85, "longitude": 116.25, "accuracy": 8.2, "speed": 6.1,
                                    "heading": 12.5, "altitude": 40},
                         "is_moving": True, "odometer": 1200, "event": "motionchange",
                         "battery": {"level": 0.55, "is_charging": False}, "activity": {"type": "in_vehicle"},
                         "extras": {}},
            "device_id": device}
    response = client_call("post", f"/ingest/osmand?token={world.device_tokens[device]}", data=json.dumps(body),
                             content_type="application/json")
    assert response.status_code == 200, response.content
    stored = PositionFix.objects.get(device_id=device)
    assert (stored.speed, stored.heading, stored.battery) == (6.1, 12.5, 55.0)


def test_osmand_get_and_its_errors(world):  # noqa: F811
    device = world.officers["a2"].device_id
    token = world.device_tokens[device]
    ok = client_call("get", "/ingest/osmand", {"token": token, "id": device, "lat": 39.85, "lon": 116.27,
                                         "timestamp": int(ago(2).timestamp())})
    assert ok.status_code == 200
    cases = [
        ({"token": token, "id": device, "lat": 95, "lon": 116.27, "timestamp": 1}, 400, "coordinates_out_of_range"),
        ({"token": token, "id": device, "lat": "abc", "lon": 116.27, "timestamp": 1}, 400, "invalid_coordinates"),
        ({"token": token, "lat": 39.85, "lon": 116.27}, 400, "missing_device_id"),
        ({"token": token, "id": world.officers["a1"].device_id, "lat": 39.85, "lon": 116.27,
          "timestamp": int(ago(1).timestamp())}, 403, "device_not_allowed"),
        ({"token": "dev_nope", "id": device, "lat": 39.85, "lon": 116.27}, 401, None),
    ]
    for params, status, reason in cases:
        response = client_call("get", "/ingest/osmand", params)
        assert response.status_code == status, (params, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert response.json().get("reason") == reason
    assert client_call("put", "/ingest/osmand").status_code == 405
