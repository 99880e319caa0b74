"""The hotspot task loop through the API, as each role: intake, filing, dispatch to the first
recommendation, the push, accept, arrive, feedback with a photo, verification by someone else,
closure; rework, extension, cancellation, merging; illegal transitions and jurisdiction."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from command import audit
from realtime.models import Push
from tests.dispatch_support import Dongcheng, dongcheng, minutes_ago, offset, place_officer  # noqa: F401

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def create(d: Dongcheng, who: str = "donghuamen", **extra: object) -> dict:
    body = {"lon": d.lon, "lat": d.lat, "category": "E0501", "source": "complaint", "description": "桥下游商"}
    body.update(extra)
    response = d.api(who, "post", "/api/tasks", body)
    assert response.status_code == 201, response.content
    return response.json()


def act(d: Dongcheng, who: str, task_id: int, action: str, body: dict | None = None, status: int = 200) -> dict:
    response = d.api(who, "post", f"/api/tasks/{task_id}/{action}", body or {})
    assert response.status_code == status, (action, response.status_code, response.content)
    return response.json()


def dispatched(d: Dongcheng) -> dict:
    place_officer(d.officer1, *offset(d.lon, d.lat, 40, 0))
    place_officer(d.officer2, *offset(d.lon, d.lat, 900, 0))
    task = create(d)
    act(d, "donghuamen", task["id"], "file")
    return act(d, "donghuamen", task["id"], "dispatch", {"units": [{"kind": "officer", "id": d.officer1.pk}]})


def test_intake_snaps_the_place_and_starts_reported(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = create(dongcheng)
    assert task["state"] == "reported"
    assert task["district"] == "110101" and task["street"] == "110101001"
    assert task["grid_cell"] and task["grid_cell"].startswith("110101001")
    assert task["community"] and task["grid_cell"].startswith(task["community"])
    assert task["district_name"] == "东城区"
    assert task["number"].startswith("T") and task["number"].endswith(f"{task['id']:07d}")
    assert [e["action"] for e in task["timeline"]] == ["create"]
    assert set(task["allowed_actions"]) == {"file", "cancel", "merge"}


def test_the_whole_loop_to_verified_closure(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    place_officer(d.officer1, *offset(d.lon, d.lat, 60, 0), at=minutes_ago(1))
    place_officer(d.officer2, *offset(d.lon, d.lat, 800, 0))
    task = create(d)
    task_id = task["id"]
    act(d, "donghuamen", task_id, "file")

    recs = d.api("donghuamen", "get", f"/api/tasks/{task_id}/recommendations").json()["items"]
    assert [(r["kind"], r["id"]) for r in recs[:2]] == [("officer", d.officer1.pk), ("officer", d.officer2.pk)]
    assert 40 < recs[0]["distance_m"] < 80 and 250 < recs[0]["bearing_deg"] < 290  # the task lies to the west
    assert recs[0]["area"] == "same_street" and not recs[0]["flagged"]
    assert recs[1]["area"] == "same_district" and recs[1]["flagged"]

    task = act(d, "donghuamen", task_id, "dispatch", {"units": [{"kind": "officer", "id": d.officer1.pk}]})
    assert task["state"] == "dispatched" and task["deadline"] and task["dispatched_at"]
    assignment = task["assignments"][0]
    assert assignment["recommended_rank"] == 1 and assignment["override_reason"] == ""
    push = Push.objects.get(id=assignment["push"]["id"])
    assert push.device_id == d.officer1.device_id and push.kind == "task"
    assert push.payload["task_id"] == task_id and push.payload["why"] == "assigned"

    # The officer sees it in their list; the other officer does not.
    assert [t["id"] for t in d.api("officer1", "get", "/api/tasks").json()["items"]] == [task_id]
    assert d.api("officer2", "get", f"/api/tasks/{task_id}").status_code == 404

    act(d, "officer1", task_id, "accept")
    place_officer(d.officer1, *offset(d.lon, d.lat, 20, 5))
    task = act(d, "officer1", task_id, "arrive", {"lon": d.lon, "lat": d.lat})
    assert task["presence_flag"] is False and task["presence_distance_m"] < 30

    upload = io.BytesIO(png_bytes())
    upload.name = "scene.png"
    photo = d.clients["officer1"].post(f"/api/tasks/{task_id}/photos", {"file": upload})
    assert photo.status_code == 201, photo.content
    task = act(d, "officer1", task_id, "feedback", {"note": "已劝离", "photos": [photo.json()["id"]]})
    assert task["state"] == "handled" and task["photos"] == [photo.json()["id"]]

    # Verification by a different person: the officer cannot verify their own work.
    act(d, "officer1", task_id, "verify", status=403)
    act(d, "test_verifier", task_id, "verify", {"note": "现场已无摊贩"})
    task = act(d, "donghuamen", task_id, "close")
    assert task["state"] == "closed" and task["closed_at"]
    assert [e["action"] for e in task["timeline"] if e["id"] is not None] == [
        "create", "file", "dispatch", "accept", "arrive", "feedback", "verify", "close"]
    arrive = next(e for e in task["timeline"] if e["action"] == "arrive")
    assert arrive["actor"] == "officer1" and arrive["lon"] == pytest.approx(d.lon)
    assert all(e["actor"] and e["at"] for e in task["timeline"])
    audit.seal()  # as the commit would (the test's transaction is rolled back)
    findings = [f for f in audit.verify() if not isinstance(f, int)]
    assert findings == []


def test_push_delivery_and_acknowledgement_appear_on_the_timeline(dongcheng: Dongcheng) -> None:  # noqa: F811
    from realtime.actions import do_ack_push, do_mark_delivered

    task = dispatched(dongcheng)
    push_id = task["assignments"][0]["push"]["id"]
    do_mark_delivered([push_id])
    do_ack_push(dongcheng.officer1.device_id, push_id)
    detail = dongcheng.api("donghuamen", "get", f"/api/tasks/{task['id']}").json()
    actions = [e["action"] for e in detail["timeline"]]
    assert "push_delivered" in actions and "push_acknowledged" in actions
    assert detail["assignments"][0]["push"]["acked_at"]


def test_rework_sends_the_task_back_and_pushes_again(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    task_id = dispatched(d)["id"]
    act(d, "officer1", task_id, "accept")
    act(d, "officer1", task_id, "arrive")
    act(d, "officer1", task_id, "feedback", {"note": "处理完毕"})
    act(d, "test_verifier", task_id, "rework", {}, status=422)  # a reason is required
    task = act(d, "test_verifier", task_id, "rework", {"reason": "摊贩仍在"})
    assert task["state"] == "dispatched" and task["reworks"] == 1 and task["handled_at"] is None
    reworks = Push.objects.filter(device_id=d.officer1.device_id, payload__why="rework", payload__task_id=task_id)
    assert reworks.count() == 1
    assert act(d, "officer1", task_id, "accept")["state"] == "accepted"


def test_extension_moves_the_deadline_by_working_hours(dongcheng: Dongcheng) -> None:  # noqa: F811
    from datetime import datetime

    from command.workdays import add_working_hours

    d = dongcheng
    task = dispatched(d)
    act(d, "donghuamen", task["id"], "extend", {"hours": 4}, status=422)  # a reason is required
    extended = act(d, "donghuamen", task["id"], "extend", {"hours": 4, "reason": "等待燃气公司"})
    old = datetime.fromisoformat(task["deadline"])
    assert datetime.fromisoformat(extended["deadline"]) == add_working_hours(old, 4)
    assert extended["extensions"] == 1
    act(d, "donghuamen", task["id"], "extend", {"hours": 0, "reason": "x"}, status=422)


def test_override_reason_when_not_the_first_recommendation(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    place_officer(d.officer1, *offset(d.lon, d.lat, 40, 0))
    place_officer(d.officer2, *offset(d.lon, d.lat, 900, 0))
    task = create(d)
    act(d, "donghuamen", task["id"], "file")
    second = {"units": [{"kind": "officer", "id": d.officer2.pk}]}
    problem = act(d, "donghuamen", task["id"], "dispatch", second, status=422)
    assert problem["recommended_rank"] == 2
    task = act(d, "donghuamen", task["id"], "dispatch", {**second, "override_reason": "熟悉该点位"})
    assert task["assignments"][0]["recommended_rank"] == 2
    assert task["assignments"][0]["override_reason"] == "熟悉该点位"


def test_illegal_transition_is_409_with_state_and_allowed_actions(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = create(dongcheng)
    response = dongcheng.api("donghuamen", "post", f"/api/tasks/{task['id']}/close", {})
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["state"] == "reported" and set(body["allowed_actions"]) == {"file", "cancel", "merge"}


def test_a_stale_version_is_409(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = create(dongcheng)
    response = dongcheng.api("donghuamen", "post", f"/api/tasks/{task['id']}/file", {}, **{"If-Match": '"99"'})
    assert response.status_code == 409 and response.json()["version"] == task["version"]
    ok = dongcheng.api("donghuamen", "post", f"/api/tasks/{task['id']}/file", {},
                       **{"If-Match": f'"{task["version"]}"'})
    assert ok.status_code == 200


def test_cancel_needs_a_reason_and_ends_the_task(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = create(dongcheng)
    act(dongcheng, "donghuamen", task["id"], "cancel", {}, status=422)
    done = act(dongcheng, "donghuamen", task["id"], "cancel", {"reason": "重复上报"})
    assert done["state"] == "cancelled" and done["allowed_actions"] == []


def test_a_likely_duplicate_is_offered_and_can_be_merged(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    first = create(d)
    lon, lat = offset(d.lon, d.lat, 30, 0)
    second = create(d, lon=lon, lat=lat)
    assert [t["id"] for t in second["possible_duplicates"]] == [first["id"]]
    merged = act(d, "donghuamen", second["id"], "merge", {"into": first["id"]})
    assert merged["state"] == "merged" and merged["merged_into"] == first["id"]


def test_duplicates_are_offered_only_from_the_reporters_scope(dongcheng: Dongcheng) -> None:  # noqa: F811
    """officer2 may not see what officer1 reported (a field officer sees their own tasks): the
    near task is offered to the street's dispatcher, not to officer2."""
    d = dongcheng
    first = create(d, who="officer1", source="patrol")
    lon, lat = offset(d.lon, d.lat, 30, 0)
    by_officer2 = create(d, who="officer2", lon=lon, lat=lat, source="patrol")
    assert by_officer2["possible_duplicates"] == []
    by_dispatcher = create(d, lon=lon, lat=lat)
    assert first["id"] in [t["id"] for t in by_dispatcher["possible_duplicates"]]


def test_jurisdiction_outside_is_404_and_the_wall_only_reads(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    task = create(d, who="dongcheng")
    # A street dispatcher of another street, built on the fly, sees nothing of it.
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.models import Profile, Role

    other = get_user_model().objects.create(username="test_jingshan")
    Profile.objects.create(user=other, role=Role.STREET_DISPATCHER, district_id="110101", street_id="110101002")
    client = Client()
    client.force_login(other)
    assert client.get(f"/api/tasks/{task['id']}").status_code == 404
    assert client.post(f"/api/tasks/{task['id']}/file", "{}", content_type="application/json").status_code == 404
    assert task["id"] not in [t["id"] for t in client.get("/api/tasks").json()["items"]]
    # Creating outside one's street is refused.
    assert client.post("/api/tasks", {"lon": d.lon, "lat": d.lat, "category": "E0501", "source": "patrol"},
                       content_type="application/json").status_code == 403
    # The wall reads but may not act; the commander may.
    assert d.api("wall", "get", f"/api/tasks/{task['id']}").status_code == 200
    assert d.api("wall", "post", f"/api/tasks/{task['id']}/file", {}).status_code == 403
    assert d.api("commander", "post", f"/api/tasks/{task['id']}/file", {}).status_code == 200


def test_unauthenticated_is_401_problem(dongcheng: Dongcheng) -> None:  # noqa: F811
    from django.test import Client

    response = Client().get("/api/tasks")
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    assert "Bearer" in response["WWW-Authenticate"]


def test_bad_input_is_a_problem_never_a_500(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    cases = [
        {"lon": "x", "lat": d.lat, "category": "E0501", "source": "patrol"},
        {"lon": d.lon, "lat": d.lat, "category": "NOPE", "source": "patrol"},
        {"lon": d.lon, "lat": d.lat, "category": "E0501", "source": "rumour"},
        {"lon": 10.0, "lat": 10.0, "category": "E0501", "source": "patrol"},
        {"lon": d.lon, "lat": d.lat, "category": "E0501", "source": "patrol", "description": "a\x00b"},
    ]
    for body in cases:
        response = d.api("donghuamen", "post", "/api/tasks", body)
        assert response.status_code in (400, 422), (body, response.status_code)
        assert response["Content-Type"] == "application/problem+json"
    response = d.api("donghuamen", "post", "/api/tasks", None)
    assert response.status_code in (400, 422)


def test_bad_uploads_are_413_and_415(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    task_id = dispatched(d)["id"]
    text = io.BytesIO(b"<html>not a photo</html>")
    text.name = "x.jpg"
    response = d.clients["officer1"].post(f"/api/tasks/{task_id}/photos", {"file": text})
    assert response.status_code == 415 and response["Content-Type"] == "application/problem+json"
    from command.photos import MAX_PHOTO_BYTES

    big = io.BytesIO(png_bytes() + b"\x00" * MAX_PHOTO_BYTES)
    big.name = "big.png"
    response = d.clients["officer1"].post(f"/api/tasks/{task_id}/photos", {"file": big})
    assert response.status_code == 413


def test_an_auto_dispatch_rule_sends_street_vending_to_the_streets_nearest_officer(dongcheng: Dongcheng) -> None:  # noqa: F811
    from command.models import DispatchRule

    d = dongcheng
    DispatchRule.objects.create(category_id="E0501", district_id="110101", street_id="110101001")
    place_officer(d.officer2, *offset(d.lon, d.lat, 20, 0))  # nearer, but of another street's team
    place_officer(d.officer1, *offset(d.lon, d.lat, 200, 0))
    task = create(d)
    assert task["state"] == "dispatched"
    assert [(a["kind"], a["id"]) for a in task["assignments"]] == [("officer", d.officer1.pk)]
    assert [e["actor"] for e in task["timeline"] if e["action"] in ("file", "dispatch")] == ["system", "system"]
    # Another category has no rule: it waits for a dispatcher.
    assert create(d, category="E0201")["state"] == "reported"


def test_the_openapi_document_and_docs_page_are_served_locally(dongcheng: Dongcheng) -> None:  # noqa: F811
    schema = dongcheng.api("donghuamen", "get", "/api/schema").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {"/api/tasks", "/api/tasks/{task_id}", "/api/tasks/{task_id}/recommendations", "/api/kpis"} <= set(paths)
    for action in ("file", "dispatch", "accept", "arrive", "feedback", "verify", "rework", "close", "extend",
                   "cancel", "merge", "reassign"):
        assert f"/api/tasks/{{task_id}}/{action}" in paths, action
    page = dongcheng.api("donghuamen", "get", "/api/docs").content.decode()
    assert "swagger" in page.lower() and "cdn." not in page and "unpkg" not in page


def test_a_unit_that_never_came_near_is_flagged_with_its_closest_distance(dongcheng: Dongcheng) -> None:  # noqa: F811
    d = dongcheng
    task_id = dispatched(d)["id"]  # officer1 40 m away at dispatch time
    act(d, "officer1", task_id, "accept")
    place_officer(d.officer1, *offset(d.lon, d.lat, 400, 0))  # it stays 400 m off, and says it arrived
    # The fix of dispatch time lies before the work window only if it came first: move the window on.
    from command.models import Task

    Task.objects.filter(pk=task_id).update(dispatched_at=Task.objects.get(pk=task_id).accepted_at)
    task = act(d, "officer1", task_id, "arrive")
    assert task["presence_flag"] is True
    assert 350 < task["presence_distance_m"] < 450
    arrive = next(e for e in task["timeline"] if e["action"] == "arrive")
    assert arrive["data"]["presence"]["flagged"] is True and arrive["data"]["presence"]["radius_m"] == 100.0
