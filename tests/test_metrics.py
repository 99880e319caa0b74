"""Operations: /metrics (staff only, every worker's numbers in multiprocess mode), the counters
moved by real requests through the real server (the signed-tile path below ASGI, the ingest fast
path, Django's own routes), route labels as templates, and the JSON log format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts.jurisdiction import Jurisdiction
from accounts.models import ApiToken
from config import logs, metrics
from config.http import server_command
from tests.dispatch_support import Dongcheng, dongcheng  # noqa: F401
from tests.live_server import ROOT, free_port, running_server, session_database_url
from tests.realtime_support import BOX, DISTRICT_A, World, fix, in_db_thread, world  # noqa: F401
from tiles.auth import issue_token

TILE_ROUTE = "/tiles/<layers>/<z>/<x>/<y>.mvt"
OGC_ITEM_ROUTE = "/ogc/collections/<collection_id>/items/<feature_id>"


def fetch(url: str, token: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our own local server)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(base: str, token: str, ready: Any, timeout: float = 15.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        status, text = fetch(f"{base}/metrics", token)
        if status == 200 and ready(samples(text)):
            return status, text
        assert time.monotonic() < deadline, text.decode()[-3000:]
        time.sleep(0.1)  # polling interval, not synchronisation


@pytest.fixture
def staff(world: World, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]  # noqa: F811
    """A staff user's API token (no role: staff may read metrics, nothing else)."""
    def make() -> str:
        user = get_user_model().objects.create_user(f"t{world.tag.lower()}_staff", is_staff=True)
        return ApiToken.issue(user, "test")[1]

    with django_db_blocker.unblock():
        yield in_db_thread(make)


@pytest.mark.django_db  # pytest-django sets up the test database only for sessions with such a test
def test_metrics_on_a_real_server_with_two_workers(world: World, staff: str, django_db_blocker,  # noqa: F811
                                                   tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city = world.users["city"]
    tile_token = issue_token(city.id, Jurisdiction("city"))
    device = world.officers["a1"].device_id
    west, south, east, north = BOX[DISTRICT_A]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "UVICORN_WORKERS": "2"}
    with django_db_blocker.unblock(), running_server(env) as base:
        # Refused anonymously and to a logged-in user who is not staff; no numbers leak.
        status, body = fetch(f"{base}/metrics")
        assert status == 401 and b"onemap_" not in body
        status, body = fetch(f"{base}/metrics", world.api_tokens["city"])
        assert status == 403 and b"onemap_" not in body

        # Real requests: a signed tile (answered by config.http below ASGI), a tile of the
        # same route through Django (no token: 401), an ingest through realtime's fast path,
        # an OGC item by id.
        tile_url = f"{base}/tiles/districts/10/843/388.mvt?t={tile_token}"
        for _ in range(3):
            assert fetch(tile_url)[0] == 200
        assert fetch(f"{base}/tiles/districts/10/843/388.mvt")[0] == 401
        fixes = [fix(device, (west + east) / 2, (south + north) / 2)]
        status, answer = fetch(f"{base}/api/positions", world.device_tokens[device], json.dumps(fixes).encode())
        assert status == 200 and json.loads(answer)["accepted"] == 1, answer
        status, _ = fetch(f"{base}/api/positions", world.device_tokens[device], json.dumps(fixes).encode())
        assert status == 200  # the same fix again: a duplicate
        assert fetch(f"{base}/ogc/collections/districts/items/110101", world.api_tokens["city"])[0] == 200
        assert fetch(f"{base}/no/such/page/abc123", world.api_tokens["city"])[0] == 404

        # Two workers took these; each adds its requests to the shared files within a second
        # (metrics.FLUSH_S): polled until they are all there, then every scrape (whichever worker
        # answers) sees the same.
        first = scrape_until(base, staff, lambda found: value(
            found, "onemap_http_request_duration_seconds_count", route=TILE_ROUTE) >= 4 and value(
            found, "onemap_http_requests_total", route=OGC_ITEM_ROUTE, method="GET", status="200") >= 1)
        scrapes = [first] + [fetch(f"{base}/metrics", staff) for _ in range(3)]
    for status, text in scrapes:
        assert status == 200
        found = samples(text)
        assert value(found, "onemap_http_requests_total", route=TILE_ROUTE, method="GET", status="200") == 3
        assert value(found, "onemap_http_requests_total", route=TILE_ROUTE, method="GET", status="401") == 1
        assert value(found, "onemap_http_requests_total", route="/api/positions", method="POST", status="200") == 2
        assert value(found, "onemap_http_requests_total", route=OGC_ITEM_ROUTE, method="GET", status="200") == 1
        assert value(found, "onemap_http_request_duration_seconds_count", route=TILE_ROUTE) == 4
        assert value(found, "onemap_ingest_fixes_total", status="accepted") == 1
        assert value(found, "onemap_ingest_fixes_total", status="duplicate") == 1
        # The first signed tile rendered (a miss, stored); the next two were hits.
        assert value(found, "onemap_tile_cache_misses_total") >= 1
        hits = sum(v for (name, _), v in found.items() if name == "onemap_tile_cache_hits_total")
        assert hits + value(found, "onemap_tile_cache_misses_total") >= 3
        # The answering worker's pool at least (it read the staff token), summed with the others'.
        assert value(found, "onemap_db_pool_pool_max") >= settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
        assert value(found, "onemap_db_pool_connections_num") >= 1
    # Labels are templates: no raw path, no id, no token ever became a label.
    routes = {dict(labels)["route"] for (name, labels) in samples(scrapes[-1][1]) if name == "onemap_http_requests_total"}
    assert metrics.UNMATCHED in routes
    for route in routes:
        assert "843" not in route and "110101" not in route and "abc123" not in route and "om_" not in route, route
    assert not any(token in scrapes[-1][1].decode() for token in (tile_token, staff, world.device_tokens[device]))


@pytest.mark.django_db
def test_fanout_lag_is_observed_when_a_frame_goes_to_a_screen(world: World, staff: str, django_db_blocker,  # noqa: F811
                                                              tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One worker (the in-memory channel layer: screen and ingest in the same process)."""
    from websockets.asyncio.client import connect

    a1 = world.officers["a1"]

    async def next_of(ws: Any, kind: str) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["type"] == kind:
                return message

    async def scenario(base: str) -> tuple[int, bytes]:
        host = base.removeprefix("http://")
        async with connect(f"ws://{host}/ws/map?token={world.api_tokens['district_a']}") as screen:
            await screen.send(json.dumps({"type": "subscribe"}))
            await next_of(screen, "snapshot")
            before = samples((await asyncio.to_thread(fetch, f"{base}/metrics", staff))[1])
            assert value(before, "onemap_fanout_lag_seconds_count") == 0
            body = json.dumps([fix(a1.device_id, 116.21, 39.81)]).encode()
            status, _ = await asyncio.to_thread(fetch, f"{base}/api/positions", world.gateway_token, body)
            assert status == 200
            frame = await next_of(screen, "frame")
            assert [u["key"] for u in frame["units"]] == [f"officer:{a1.id}"]
            return await asyncio.to_thread(fetch, f"{base}/metrics", staff)

    with django_db_blocker.unblock(), running_server({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as base:
        status, text = asyncio.run(scenario(base))
    assert status == 200
    found = samples(text)
    assert value(found, "onemap_fanout_lag_seconds_count") == 1
    assert 0 <= value(found, "onemap_fanout_lag_seconds_sum") < 30
    assert value(found, "onemap_ingest_fixes_total", status="accepted") == 1


@pytest.mark.django_db
def test_loopback_clients_only_when_the_setting_allows(client, settings) -> None:  # type: ignore[no-untyped-def]
    """Django's test client comes from 127.0.0.1."""
    assert settings.ONEMAP_METRICS_LOOPBACK is False  # the default: no one without a login
    response = client.get("/metrics")
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    settings.ONEMAP_METRICS_LOOPBACK = True
    response = client.get("/metrics")
    assert response.status_code == 200 and b"onemap_http_requests_total" in response.content
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 401


def test_a_batch_of_requests_lands_in_the_counter_and_the_histogram() -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    route = "/test/batch/<id>"
    for seconds, status in ((0.001, 200), (0.3, 200), (99.0, 404)):  # on a bound, between, beyond all
        metrics.observe_request(route, "GET", status, seconds)
    metrics.observe_request(route, "BREW", 200, 0.0)  # an unknown method: one label for them all
    assert sample("onemap_http_requests_total", route=route, method="GET", status="200") == 0  # not yet flushed
    metrics.REQUEST_BATCH.flush()
    assert sample("onemap_http_requests_total", route=route, method="GET", status="200") == 2
    assert sample("onemap_http_requests_total", route=route, method="GET", status="404") == 1
    assert sample("onemap_http_requests_total", route=route, method="other", status="200") == 1
    assert sample("onemap_http_request_duration_seconds_bucket", route=route, le="0.001") == 2
    assert sample("onemap_http_request_duration_seconds_bucket", route=route, le="0.25") == 2
    assert sample("onemap_http_request_duration_seconds_bucket", route=route, le="0.5") == 3
    assert sample("onemap_http_request_duration_seconds_bucket", route=route, le="10.0") == 3
    assert sample("onemap_http_request_duration_seconds_bucket", route=route, le="+Inf") == 4
    assert sample("onemap_http_request_duration_seconds_count", route=route) == 4
    assert sample("onemap_http_request_duration_seconds_sum", route=route) == pytest.approx(99.301)


def test_a_dead_workers_pool_gauges_leave_the_sum(tmp_path: Path) -> None:
    """uvicorn replaces a dead worker without telling anyone: its live gauges go at the next scrape."""
    code = ("from config import metrics; metrics.POOL['pool_size'].set(7); "
            "metrics.FIXES.labels('accepted').inc(3)")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    assert list(tmp_path.glob("gauge_livesum_*.db"))
    metrics._forget_dead_processes(str(tmp_path))
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
    assert list(tmp_path.glob("counter_*.db"))  # its counts stay: they happened


def test_route_templates() -> None:
    assert metrics.route_template(r"tiles/^(?P<layers>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)\.mvt$") == TILE_ROUTE
    assert metrics.route_template("api/pushes/<uuid:push_id>") == "/api/pushes/<uuid:push_id>"
    assert metrics.route_template("tiles/^(?P<rest>.*)$") == "/tiles/<rest>"
    assert metrics.route_template(r"ogc/^collections/(?P<collection_id>[^/]+)/items/(?P<feature_id>[^/]+)/?$") == OGC_ITEM_ROUTE
    assert metrics.route_template(r"ogc/^api\.html$") == "/ogc/api.html"


def test_a_dispatch_action_is_counted_when_it_commits(dongcheng: Dongcheng,  # noqa: F811
                                                      django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    before = REGISTRY.get_sample_value("onemap_dispatch_actions_total", {"action": "create"}) or 0.0
    body = {"lon": dongcheng.lon, "lat": dongcheng.lat, "category": "E0501", "source": "complaint", "description": "测试"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert dongcheng.api("donghuamen", "post", "/api/tasks", body).status_code == 201
        # Not yet committed: not yet counted.
        assert (REGISTRY.get_sample_value("onemap_dispatch_actions_total", {"action": "create"}) or 0.0) == before
    for callback in callbacks:
        callback()
    assert REGISTRY.get_sample_value("onemap_dispatch_actions_total", {"action": "create"}) == before + 1


def json_lines(message: str, *args: object, exc: bool = False) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("onemap.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc:
            try:
                raise ValueError("boom with om_secretsecretsecret0123")
            except ValueError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_json_log_lines_parse_and_carry_the_request_id() -> None:
    line = json_lines("plain %s", "message 中文")
    assert line["level"] == "WARNING" and line["logger"] == "onemap.test.json" and line["message"] == "plain message 中文"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", line["timestamp"])
    assert "request_id" not in line
    token = logs.REQUEST_ID.set("abc123")
    try:
        assert json_lines("in a request")["request_id"] == "abc123"
    finally:
        logs.REQUEST_ID.reset(token)
    assert "Traceback" in json_lines("failed", exc=True)["exception"]


def test_json_log_lines_never_carry_tokens() -> None:
    line = json_lines('"GET /ws/map?token=om_abcdefghijklmnopqrst HTTP/1.1" %s %s', "dev_zyxwvutsrq1234567890",
                      "/tiles/a/1/2/3.mvt?v=1&t=1~city~~~4102444800:sig")
    assert "abcdefghijkl" not in line["message"] and "zyxwvutsrq" not in line["message"]
    assert "4102444800" not in line["message"] and "v=1" in line["message"]
    assert "secretsecret" not in json_lines("failed", exc=True)["exception"]


@pytest.mark.django_db
def test_a_real_server_logs_json_lines_with_request_ids_and_no_tokens(django_db_blocker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every line the server writes parses (uvicorn's own lines too); a request's lines carry its
    id (the client's X-Request-ID when it is a plain id); tokens in URLs are masked."""
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": session_database_url(), "ONEMAP_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    with django_db_blocker.unblock(), log_path.open("wb") as log_file:
        server = subprocess.Popen(server_command(sys.executable, "127.0.0.1", port, "--access-log"),
                                  cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while fetch_or_none(f"{base}/login/") is None:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)  # polling interval, not synchronisation
            request = urllib.request.Request(f"{base}/no/such/page?t=1~city~~~4102444800:sig&token=om_secretsecretsecret0123",
                                             headers={"X-Request-ID": "req-42"})
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=30)  # noqa: S310 (our own local server)
        finally:
            server.terminate()
            server.wait(timeout=30)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert {"timestamp", "level", "logger", "message"} <= set(lines[0])
    mine = [line for line in lines if line.get("request_id") == "req-42"]
    assert {line["logger"] for line in mine} == {"django.request", "uvicorn.access"}
    text = log_path.read_text()
    assert "secretsecret" not in text and "4102444800" not in text


def fetch_or_none(url: str) -> int | None:
    try:
        return fetch(url)[0]
    except OSError:
        return None


def test_the_log_format_setting() -> None:
    text = logs.logging_config("text", "INFO")
    assert "formatters" not in text and text["handlers"]["console"]["filters"] == ["redact_tokens"]  # type: ignore[index]
    config = logs.logging_config("json", "INFO")
    assert config["handlers"]["console"]["formatter"] == "json"  # type: ignore[index]
    with pytest.raises(ValueError):
        logs.logging_config("yaml", "INFO")

