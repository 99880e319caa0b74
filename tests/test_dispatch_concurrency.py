"""Races with real commits on separate connections: two dispatchers assigning the same task at the
same moment (one wins, the other gets 409), and a create retried concurrently with the same
Idempotency-Key (one task). The rows are committed, so each test removes its tasks afterwards
(audit entries stay: the log is append-only, and they chain correctly)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from command.models import IdempotencyKey, Task
from geo.models import Officer
from realtime.models import Push
from tests.dispatch_support import STREET, point_in_street


def in_threads(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, each on its own thread (own connection), released by one barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, c) for c in calls]]


def on_thread(call: Callable[[], Any]) -> Any:
    return in_threads(call)[0]


def client(username: str) -> Client:
    c = Client()
    c.force_login(get_user_model().objects.get(username=username))
    return c


def post(username: str, path: str, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    response = client(username).post(path, json.dumps(body), content_type="application/json", headers=headers)
    return response.status_code, response.json()


@pytest.fixture
def committed(django_db_blocker: Any) -> Iterator[list[int]]:
    made: list[int] = []
    with django_db_blocker.unblock():
        yield made

        def clean() -> None:
            devices = list(Officer.objects.filter(street_id=STREET).values_list("device_id", flat=True))
            Push.objects.filter(device_id__in=devices, payload__task_id__in=made).delete()
            IdempotencyKey.objects.filter(task_id__in=made).delete()
            Task.objects.filter(id__in=made).delete()

        on_thread(clean)


def body() -> dict[str, Any]:
    lon, lat = point_in_street(STREET)
    return {"lon": lon, "lat": lat, "category": "E0501", "source": "patrol", "description": "并发测试"}


def test_two_dispatchers_assign_the_same_task_at_once(committed: list[int]) -> None:
    def create_and_file() -> tuple[int, list[int]]:
        status, task = post("donghuamen", "/api/tasks", body())
        assert status == 201, task
        committed.append(task["id"])
        assert post("donghuamen", f"/api/tasks/{task['id']}/file", {})[0] == 200
        officers = list(Officer.objects.filter(street_id=STREET).order_by("id").values_list("id", flat=True)[:2])
        return task["id"], officers

    task_id, officers = on_thread(create_and_file)

    def assign(username: str, officer: int) -> Callable[[], tuple[int, dict[str, Any]]]:
        return lambda: post(username, f"/api/tasks/{task_id}/dispatch",
                            {"units": [{"kind": "officer", "id": officer}], "override_reason": "并发测试"})

    results = in_threads(assign("donghuamen", officers[0]), assign("dongcheng", officers[1]))
    assert sorted(status for status, _ in results) == [200, 409], results
    loser = next(problem for status, problem in results if status == 409)
    assert loser["state"] == "dispatched" and "dispatch" not in loser["allowed_actions"]

    def check() -> None:
        task = Task.objects.get(pk=task_id)
        assert task.assignments.filter(active=True).count() == 1
        assert task.events.filter(action="dispatch").count() == 1

    on_thread(check)


def test_a_create_retried_at_once_with_one_key_makes_one_task(committed: list[int]) -> None:
    key = f"test-{uuid.uuid4()}"
    payload = body()
    results = in_threads(*[lambda: post("donghuamen", "/api/tasks", payload, **{"Idempotency-Key": key})] * 3)
    statuses = sorted(status for status, _ in results)
    ids = {task["id"] for _, task in results}
    committed.extend(ids)
    assert statuses == [200, 200, 201] and len(ids) == 1, results
    # A later retry gets the same task; the same key with another body is refused.
    status, again = on_thread(lambda: post("donghuamen", "/api/tasks", payload, **{"Idempotency-Key": key}))
    assert status == 200 and again["id"] in ids
    other = {**payload, "description": "另一件事"}
    status, problem = on_thread(lambda: post("donghuamen", "/api/tasks", other, **{"Idempotency-Key": key}))
    assert status == 422 and "different request" in problem["detail"]
    assert on_thread(lambda: Task.objects.filter(description="并发测试", id__in=ids).count()) == 1


def test_committed_entries_are_sealed_by_the_process_that_wrote_them(committed: list[int]) -> None:
    """After the commit, the writing process's sealer thread chains the entry: nobody has to call
    verify or wait for the job runner."""
    from command import audit
    from command.models import AuditEntry
    from tests.fault_support import wait_until

    status, task = on_thread(lambda: post("donghuamen", "/api/tasks", body()))
    assert status == 201, task
    committed.append(task["id"])

    def entry() -> AuditEntry:
        return on_thread(lambda: AuditEntry.objects.get(object_type="task", object_id=str(task["id"]), action="create"))

    wait_until(lambda: entry().seq is not None, 10, "the create's audit entry to be sealed")
    sealed = entry()
    previous = on_thread(lambda: AuditEntry.objects.get(seq=(sealed.seq or 0) - 1).hash) if (sealed.seq or 0) > 1 \
        else audit.GENESIS
    assert sealed.prev_hash == previous and sealed.hash == audit.link_hash(previous or "", sealed.content_hash)
