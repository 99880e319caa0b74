"""The server half of bench/dispatch.py: a real 2-worker server on the scratch database with a
private Redis; recommendations through the API, assign -> push on /ws/field, and 50 dispatchers."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import percentiles
from config.http import server_command

ROOT = Path(__file__).resolve().parent.parent
DISPATCHERS = 50


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, redis_url: str) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(server_command(sys.executable, "127.0.0.1", port, "--workers", "2", "--log-level",
                                           "warning"), cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited while starting"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/login/")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # polling for start-up
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None


def make_identities() -> tuple[str, list[tuple[int, str, str, float, float]]]:
    """A city commander's API token, and officers near hotspots with device tokens."""
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken, Profile, Role
    from geo.models import Officer
    from realtime.devices import issue_device_token

    user, _ = get_user_model().objects.get_or_create(username="bench_commander")
    Profile.objects.update_or_create(user=user, defaults={"role": Role.CITY_COMMANDER})
    _, token = ApiToken.issue(user, name="bench")
    officers = []
    for officer in Officer.objects.filter(geom__isnull=False).exclude(device_id__startswith="bench-").order_by("id")[:60]:
        assert officer.geom is not None
        officers.append((officer.pk, officer.device_id, issue_device_token(officer.device_id),
                         officer.geom.x, officer.geom.y))
    return token, officers


def task_body(lon: float, lat: float, what: str) -> dict[str, Any]:
    return {"lon": lon + 0.0003, "lat": lat, "category": "E0501", "source": "patrol", "description": what}


def create_file_dispatch(api: Api, officer: tuple[int, str, str, float, float], what: str,
                         before_dispatch: Callable[[int], None] | None = None) -> tuple[int, list[int]]:
    statuses = []
    status, task = api.call("POST", "/api/tasks", task_body(officer[3], officer[4], what))
    statuses.append(status)
    if status != 201:
        return 0, statuses
    statuses.append(api.call("POST", f"/api/tasks/{task['id']}/file", {})[0])
    if before_dispatch:
        before_dispatch(task["id"])
    statuses.append(api.call("POST", f"/api/tasks/{task['id']}/dispatch",
                             {"units": [{"kind": "officer", "id": officer[0]}], "override_reason": "bench"})[0])
    return task["id"], statuses


def bench_push(port: int, token: str, officer: tuple[int, str, str, float, float], n: int) -> list[list[Any]]:
    from websockets.sync.client import connect

    api = Api(port, token)
    arrived: dict[str, float] = {}
    ready = threading.Event()

    with connect(f"ws://127.0.0.1:{port}/ws/field?token={officer[2]}", open_timeout=10) as ws:
        def reader() -> None:
            for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "hello":
                    ready.set()
                if message.get("type") == "push":
                    payload = message.get("payload") or {}
                    key = f"task:{payload['task_id']}" if "task_id" in payload else f"push:{payload.get('n')}"
                    arrived[key] = time.perf_counter()
                    ws.send(json.dumps({"type": "ack", "id": message["id"]}))

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        assert ready.wait(10), "no hello on /ws/field"

        def wait_for(key: str) -> float:
            deadline = time.monotonic() + 10
            while key not in arrived:
                if time.monotonic() > deadline:
                    raise TimeoutError(key)
                time.sleep(0.0005)  # polling the reader's arrivals
            return arrived[key]

        assign, plain = [], []
        for i in range(n):
            started: dict[str, float] = {}

            def mark(task_id: int, started: dict[str, float] = started) -> None:
                started["t"] = time.perf_counter()

            task_id, statuses = create_file_dispatch(api, officer, "bench push", mark)
            assert statuses == [201, 200, 200], statuses
            assign.append((wait_for(f"task:{task_id}") - started["t"]) * 1000)
            t0 = time.perf_counter()
            status, _ = api.call("POST", "/api/pushes", {"device_id": officer[1], "kind": "map_push",
                                                         "payload": {"n": i}})
            assert status == 201, status
            plain.append((wait_for(f"push:{i}") - t0) * 1000)
    rows = []
    for name, samples, target in (("assign -> push on /ws/field", assign, "p99 <= 200 ms"),
                                  ("baseline: POST /api/pushes -> /ws/field", plain, "")):
        stats = percentiles(samples)
        rows.append([name, len(samples), f"{stats['p50']:.1f}", f"{stats['p99']:.1f}", target,
                     ("meets" if stats["p99"] <= 200 else "misses") if target else ""])
    return rows


def bench_recommend_api(port: int, token: str, officers: list[Any], n: int) -> list[list[Any]]:
    api = Api(port, token)
    ids = []
    for officer in officers[:20]:
        status, task = api.call("POST", "/api/tasks", task_body(officer[3], officer[4], "bench recommend"))
        assert status == 201, task
        ids.append(task["id"])
    rows = []
    for name, path_of, target in (
            ("GET /api/tasks/{id}/recommendations", lambda i: f"/api/tasks/{ids[i % len(ids)]}/recommendations",
             "p99 <= 30 ms"),
            ("baseline: GET /api/me (the API's floor)", lambda i: "/api/me", "")):
        samples = []
        for i in range(n + 20):
            t0 = time.perf_counter()
            status, body = api.call("GET", path_of(i))
            assert status == 200, body
            if i >= 20:  # warm-up excluded
                samples.append((time.perf_counter() - t0) * 1000)
        stats = percentiles(samples)
        rows.append([name, n, f"{stats['p50']:.1f}", f"{stats['p99']:.1f}", target,
                     ("meets" if stats["p99"] <= 30 else "misses") if target else ""])
    return rows


def bench_dispatchers(port: int, token: str, officers: list[Any], loops: int) -> list[list[Any]]:
    from command import audit
    from command.models import AuditEntry, Task

    def one_dispatcher(index: int, what: str, count: int) -> tuple[int, int]:
        api = Api(port, token)
        ok = errors = 0
        for j in range(count):
            _, statuses = create_file_dispatch(api, officers[(index + j) % len(officers)], what)
            ok += sum(1 for s in statuses if s in (200, 201))
            errors += sum(1 for s in statuses if s not in (200, 201)) + (3 - len(statuses))
        return ok, errors

    # Warm-up, not measured: the server's connection pools grow to their size, and each new
    # PostgreSQL connection pays its one-time costs (PROJ's set-up for ST_Transform, ~70 ms, the
    # catalogue caches) before the steady state is measured.
    with ThreadPoolExecutor(max_workers=DISPATCHERS) as pool:
        list(pool.map(lambda i: one_dispatcher(i, "bench warm-up", 1), range(DISPATCHERS)))
    rows = []
    audit_before = AuditEntry.objects.count()
    for name, workers, count in (("baseline: 1 dispatcher", 1, loops * 5),
                                 (f"{DISPATCHERS} dispatchers at once", DISPATCHERS, loops)):
        what = f"bench x{workers}"
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda i, w=what, c=count: one_dispatcher(i, w, c), range(workers)))
        elapsed = time.perf_counter() - t0
        ok = sum(r[0] for r in results)
        errors = sum(r[1] for r in results)
        stored = Task.objects.filter(description=what, state="dispatched").count()
        lost = workers * count - stored
        rate = ok / elapsed
        target = ">= 200 actions/s" if workers > 1 else ""
        verdict = ("meets" if rate >= 200 and errors == 0 and lost == 0 else "misses") if workers > 1 else ""
        rows.append([f"{name} (create, file, dispatch)", ok, f"{rate:.0f} actions/s",
                     f"errors {errors}, lost {lost}", target, verdict])
    findings = [f for f in audit.verify() if not isinstance(f, int)]
    added = AuditEntry.objects.count() - audit_before
    rows.append(["audit chain after the runs", added, "entries added", f"{len(findings)} problems", "intact",
                 "meets" if not findings else "misses"])
    return rows


def bench_server(url: str, redis_url: str, points: list[Any], *, quick: bool,
                 progress: Callable[[str], None]) -> list[list[Any]]:
    token, officers = make_identities()
    rows: list[list[Any]] = []
    with server(url, redis_url) as port:
        progress("recommendations through the API")
        rows += bench_recommend_api(port, token, officers, 100 if quick else 500)
        progress("assign -> push")
        rows += bench_push(port, token, officers[0], 30 if quick else 200)
        progress(f"{DISPATCHERS} dispatchers")
        rows += bench_dispatchers(port, token, officers, 2 if quick else 6)
    return rows
