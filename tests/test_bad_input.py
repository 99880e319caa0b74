"""Bad input that used to get a 500 or drop a socket (issue 14): each case now gets a 4xx problem
(HTTP) or an error message on a socket that stays open (WebSocket), and nothing is written.
Django's own error pages (404, 500, CSRF, too many fields) answer API paths with a problem too."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import Client, RequestFactory
from django.urls import get_resolver

from accounts.jurisdiction import Jurisdiction
from config import jsonparse
from config.asgi import application
from config.problems import PROBLEM_CONTENT_TYPE
from geo.models import PositionFix
from realtime.actions import PushInvalid, check_push, do_send_push
from realtime.fixes import FixRejected, parse_fix
from realtime.models import Push
from realtime.units import SubscriptionInvalid, check_subscription
from tests.realtime_support import WAIT, ago, fix, in_db_thread, receive, receive_type, run, world  # noqa: F401

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000
BIG = "1" * 401  # beyond a double: float() of it raised OverflowError


def asgi_call(method: str, path: str, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """Through the whole ASGI application, as the server runs it (the ingest fast path included)."""
    headers = [(b"host", b"testserver"), *(headers or [])]
    response = run(HttpCommunicator(application, method, path, body=body, headers=headers).get_response())
    response["headers"] = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    return response


def assert_problem(response: dict[str, Any], status: int | None = None) -> dict[str, Any]:
    assert 400 <= response["status"] < 500, (response["status"], response["body"][:300])
    if status is not None:
        assert response["status"] == status, response["body"][:300]
    assert response["headers"]["content-type"] == PROBLEM_CONTENT_TYPE
    problem = json.loads(response["body"])
    assert problem["status"] == response["status"] and problem["title"] and problem["detail"]
    return problem


def splice(document: Any, raw: str) -> str:
    """The document as JSON text, with raw JSON text (not valid JSON itself, perhaps) where "@RAW" is."""
    return json.dumps(document).replace('"@RAW"', raw)


def device_post(path: str, token: str | None, body: str | bytes) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return asgi_call("POST", path, body.encode() if isinstance(body, str) else body, headers)


# --- the shared parser ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "reason"), [
    (DEEP, "too_deep"), ("[" * 33 + "]" * 33, "too_deep"), ('{"a":' * 40 + "1" + "}" * 40, "too_deep"),
    (BIG, "number_out_of_range"), (f'{{"lon": -{BIG}}}', "number_out_of_range"), ("1e400", "number_out_of_range"),
    ("[NaN]", "number_out_of_range"), ('{"x": Infinity}', "number_out_of_range"), ("-Infinity", "number_out_of_range"),
    ('{"a": "x\\u0000y"}', "invalid_string"), ('{"\\u0000": 1}', "invalid_string"), ('["\\ud800"]', "invalid_string"),
    ('"\\udfff\\ud800"', "invalid_string"), ("{", "malformed_json"), ("", "malformed_json"),
    ('["\ud800"]', "invalid_string"),  # a raw surrogate, as a Python caller may pass text
    (b"\xff\xfe[]", "malformed_json"), ('"\\u0000"'.encode("utf-16"), "malformed_json"),
])
def test_parser_refuses_with_a_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(jsonparse.JsonInvalid) as refused:
        jsonparse.loads(text)
    assert refused.value.reason == reason


def test_fix_ingest_parses_non_finite_numbers_for_parse_fix_to_refuse() -> None:
    """A NaN is one fix's error (invalid_coordinates), not the whole batch's: realtime/README.md."""
    lon, lat, inf = jsonparse.loads('[NaN, -Infinity, 1e400]', allow_nan=True)
    assert math.isnan(lon) and lat == -math.inf and inf == math.inf
    for refused in (BIG, DEEP, '"\\u0000"'):
        with pytest.raises(jsonparse.JsonInvalid):
            jsonparse.loads(refused, allow_nan=True)


def test_parser_takes_what_clients_send() -> None:
    assert jsonparse.loads("[" * 32 + "]" * 32) == eval("[" * 32 + "]" * 32)  # noqa: S307 (a literal)
    assert jsonparse.loads('["\\ud83d\\ude00", "\\\\u0000", "地图"]') == ["😀", "\\u0000", "地图"]
    assert jsonparse.loads(b'{"lon": 116.391349123456789, "t": 1733200000000, "n": -0.0}') == \
        {"lon": 116.391349123456789, "t": 1733200000000, "n": -0.0}


# --- POST /api/positions ----------------------------------------------------------------------


def test_positions_bad_json_is_a_problem(world):  # noqa: F811
    a1 = world.officers["a1"].device_id
    at = ago(5).isoformat()
    assert assert_problem(device_post("/api/positions", world.gateway_token, DEEP), 400)["reason"] == "too_deep"
    for field in ("lon", "time", "speed"):
        body = splice([{"device_id": a1, "time": at, "lon": 116.2, "lat": 39.85, field: "@RAW"}], BIG)
        assert assert_problem(device_post("/api/positions", world.gateway_token, body), 400)["reason"] == \
            "number_out_of_range"
    assert PositionFix.objects.filter(device_id=a1).count() == 0


def test_parse_fix_names_a_number_beyond_a_double() -> None:
    """A Python caller (not the JSON parser) may hand parse_fix any int."""
    for field in ("lon", "time", "speed"):
        raw = {**fix("OFF-1", 116.2, 39.85), field: int(BIG)}
        with pytest.raises(FixRejected):
            parse_fix(raw)
    with pytest.raises(FixRejected):
        parse_fix({**fix("OFF-1", 116.2, 39.85), "device_id": "OFF-1\n"})


# --- /ingest/osmand -------------------------------------------------------------------------


def test_osmand_authenticates_before_parsing(world):  # noqa: F811
    deep = '{"location": ' * 50_000
    assert_problem(device_post("/ingest/osmand", None, deep), 401)
    assert_problem(device_post("/ingest/osmand?token=dev_wrong", None, deep), 401)
    device = world.officers["a1"].device_id
    token = world.device_tokens[device]
    assert assert_problem(device_post(f"/ingest/osmand?token={token}", None, deep), 400)["reason"] == "too_deep"


def test_osmand_huge_latitude_is_a_problem(world):  # noqa: F811
    device = world.officers["a1"].device_id
    token = world.device_tokens[device]
    body = splice({"device_id": device, "location": {"timestamp": ago(5).isoformat(),
                                                     "coords": {"latitude": "@RAW", "longitude": 116.2}}}, BIG)
    assert_problem(device_post(f"/ingest/osmand?token={token}", None, body), 400)
    query = f"/ingest/osmand?token={token}&id={device}&timestamp={int(ago(5).timestamp())}&lat={BIG}&lon=116.2"
    assert_problem(asgi_call("GET", query), 400)
    assert PositionFix.objects.filter(device_id=device).count() == 0


# --- /api/pushes ----------------------------------------------------------------------------


def test_push_payloads_postgres_cannot_store_are_problems(world):  # noqa: F811
    device = world.vehicles["a1"].device_id
    headers = [(b"content-type", b"application/json"),
               (b"authorization", f"Bearer {world.api_tokens['district_a']}".encode())]

    def push(body: str) -> dict[str, Any]:
        return asgi_call("POST", "/api/pushes", body.encode(), headers)

    for payload in ('{"a": ' * 20_000, '{"v": NaN}', '{"v": Infinity}', '{"note": "a\\u0000b"}',
                    '{"note": "\\ud800"}', '{"\\u0000": 1}'):
        assert_problem(push(splice({"device_id": device, "kind": "task", "payload": "@RAW"}, payload)), 400)
    assert_problem(push(json.dumps({"device_id": device + "\x00", "kind": "task", "payload": {}})), 400)
    assert_problem(push(json.dumps({"device_id": device + "\n", "kind": "task", "payload": {}})), 400)
    assert_problem(push(json.dumps({"device_id": device, "kind": ["task"], "payload": {}})), 400)
    assert not Push.objects.filter(device_id=device).exists()
    good = push(json.dumps({"device_id": device, "kind": "task", "payload": {"note": "\U0001f693 出警"}}))
    assert good["status"] == 201, good["body"]


def test_check_push_refuses_what_jsonb_would(world):  # noqa: F811
    """Pushes made in Python (not through the API's parser) meet the same rules before any write."""
    device = world.vehicles["a1"].device_id
    nested: dict[str, Any] = {}
    for _ in range(40):
        nested = {"n": nested}
    for payload in ({"v": math.nan}, {"v": math.inf}, {"s": "\x00"}, {"s": "\ud800"}, {"\x00": 1}, nested,
                    {"v": object()}):
        with pytest.raises(PushInvalid):
            check_push(device, "task", payload)
    with pytest.raises(PushInvalid):
        in_db_thread(do_send_push, device + "\x00", "task", {})
    assert not Push.objects.filter(device_id=device).exists()


# --- WebSockets -----------------------------------------------------------------------------


async def still_open(socket: WebsocketCommunicator) -> None:
    await socket.send_json_to({"type": "ping", "ref": "alive"})
    assert (await receive_type(socket, "pong"))["ref"] == "alive"


def test_map_socket_answers_bad_subscriptions_and_stays_open(world):  # noqa: F811
    async def scenario() -> None:
        screen = WebsocketCommunicator(application, f"/ws/map?token={world.api_tokens['city']}")
        assert (await screen.connect(timeout=WAIT))[0]
        await receive_type(screen, "hello")
        for frame, error in [(DEEP, "too_deep"), ('{"type": "subscribe", "x": ' + "[" * 1000 + "]" * 1000 + "}", "too_deep"),
                             (splice({"type": "subscribe", "bbox": ["@RAW", 39, 117, 40]}, BIG), "number_out_of_range"),
                             ('{"type": "subscribe", "layers": [[1]]}', "invalid_subscription"),
                             ('{"type": "subscribe", "layers": [{"a": 1}]}', "invalid_subscription"),
                             ('{"type": "subscribe", "bbox": [1e308, 39, 117, 40]}', "invalid_subscription"),
                             ('{"type": "subscribe", "resume": {"stream": [1], "seq": "x"}, "layers": 5}',
                              "invalid_subscription")]:
            await screen.send_to(text_data=frame)
            answer = await receive(screen)
            assert answer["type"] == "error" and answer["error"] == error, (frame[:60], answer)
            await still_open(screen)
        await screen.disconnect()

    run(scenario())


def test_check_subscription_refuses_python_values_beyond_json() -> None:
    city = Jurisdiction("city")
    for message in ({"bbox": [int(BIG), 39, 117, 40]}, {"bbox": [116, 39, 117, math.nan]},
                    {"layers": [["officers"]]}, {"layers": [None]}, {"bbox": "1,2,3,4"}):
        with pytest.raises(SubscriptionInvalid):
            check_subscription(message, city)


def test_field_socket_answers_bad_fixes_and_stays_open(world):  # noqa: F811
    device = world.officers["a1"].device_id

    async def scenario() -> None:
        app = WebsocketCommunicator(application, f"/ws/field?token={world.device_tokens[device]}")
        assert (await app.connect(timeout=WAIT))[0]
        await receive_type(app, "hello")
        at = ago(5).isoformat()
        for frame, error in [(DEEP, "too_deep"),
                             (splice({"type": "fix", "fix": {"time": at, "lon": "@RAW", "lat": 39.85}}, BIG),
                              "number_out_of_range"),
                             ('{"type": "fixes", "fixes": [' + "[" * 500 + "]" * 500 + "]}", "too_deep"),
                             (json.dumps({"type": "fix", "fix": {"time": at, "lon": "\x00", "lat": 1}}), "invalid_string")]:
            await app.send_to(text_data=frame)
            answer = await receive(app)
            assert answer["type"] == "error" and answer["error"] == error, (frame[:60], answer)
            await still_open(app)
        await app.send_to(text_data=json.dumps({"type": "fix", "ref": 7, "fix": {"time": at, "lon": 1e308, "lat": 39.85}}))
        result = await receive_type(app, "fix_result")
        assert result["ref"] == 7 and result["results"][0]["reason"] == "coordinates_out_of_range"
        await app.send_to(text_data=splice({"type": "fix", "ref": "@RAW", "fix": {"time": at, "lon": "@RAW", "lat": 1}},
                                           "NaN"))
        result = await receive_type(app, "fix_result")  # valid JSON back: the NaN ref is not echoed
        assert result["ref"] is None and result["results"][0]["reason"] == "invalid_coordinates"
        await app.disconnect()

    run(scenario())
    assert PositionFix.objects.filter(device_id=device).count() == 0


# --- Django's own error pages on API paths ----------------------------------------------------


def client_call(client: Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = in_db_thread(lambda: getattr(client, method)(path, **kwargs))
    return {"status": response.status_code, "headers": {k.lower(): v for k, v in response.items()},
            "body": response.content.decode(errors="replace")}


def test_csrf_failure_on_an_api_path_is_a_problem(world):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    in_db_thread(client.force_login, world.users["district_a"])
    body = json.dumps({"device_id": world.vehicles["a1"].device_id, "kind": "task", "payload": {}})
    problem = assert_problem(client_call(client, "post", "/api/pushes", data=body, content_type="application/json"), 403)
    assert problem["reason"] == "csrf_failed"
    page = client_call(client, "post", "/logout/")  # a page keeps Django's own HTML answer
    assert page["status"] == 403 and page["headers"]["content-type"].startswith("text/html")


def test_too_many_query_fields_is_a_problem(world, settings):  # noqa: F811
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    many = "&".join(f"f{i}=1" for i in range(60))
    device = world.officers["a1"].device_id
    assert_problem(asgi_call("POST", f"/api/positions?token={world.gateway_token}&{many}", b"[]",
                             [(b"content-type", b"application/json")]), 400)
    assert_problem(asgi_call("GET", f"/ingest/osmand?token={world.device_tokens[device]}&{many}"), 400)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.api_tokens['city']}")
    for path in ("/ogc/collections", "/tiles/officers/0/0/0.mvt", "/tiles/officers.json",
                 "/tiles/style.json"):
        assert_problem(client_call(client, "get", f"{path}?{many}"), 400)


def test_not_found_on_api_paths_is_a_problem_and_pages_keep_html() -> None:
    client = Client()
    for path in ("/api/nothing-here", "/ingest/nothing", "/api/pushes/not-a-uuid"):
        assert_problem(client_call(client, "get", path), 404)
    page = client_call(client, "get", "/nothing-here/")
    assert page["status"] == 404 and page["headers"]["content-type"].startswith("text/html")


def test_server_error_handler_answers_api_paths_with_a_problem() -> None:
    resolver = get_resolver()
    handler = resolver.resolve_error_handler(500)
    api = handler(RequestFactory().get("/api/pushes"))
    assert api.status_code == 500 and api["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert json.loads(api.content)["status"] == 500
    page = handler(RequestFactory().get("/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    for status in (400, 403, 404):
        assert resolver.resolve_error_handler(status).__module__ == "config.problems"
