"""Pushes to field units over /ws/field: stored until acknowledged, redelivered on reconnect,
delivery and acknowledgement times recorded; fixes over the same socket; the push API."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from realtime.actions import do_send_push
from realtime.models import Push
from tests.realtime_support import WAIT, fix, in_db_thread, receive, receive_type, run, world  # noqa: F401

pytestmark = pytest.mark.django_db


async def field_app(token: str) -> WebsocketCommunicator:
    app = WebsocketCommunicator(application, f"/ws/field?token={token}")
    connected, _ = await app.connect(timeout=WAIT)
    assert connected
    assert (await receive(app))["type"] == "hello"
    return app


def send_push(device_id: str, text: str) -> Push:
    return in_db_thread(do_send_push, device_id, "map_push", {"message": text, "place": {"lon": 116.21, "lat": 39.81}})


def test_push_is_redelivered_until_acknowledged(world):  # noqa: F811
    device = world.officers["a1"].device_id
    token = world.device_tokens[device]
    waiting = send_push(device, "去东华门 go to Donghuamen")  # the phone is offline

    async def scenario() -> None:
        app = await field_app(token)
        first = await receive_type(app, "push")
        assert first["id"] == str(waiting.id) and first["payload"]["message"].startswith("去东华门")
        await app.disconnect()  # no acknowledgement: it must come again

        app = await field_app(token)
        assert (await receive_type(app, "push"))["id"] == str(waiting.id)
        await app.send_json_to({"type": "ack", "id": str(waiting.id)})
        acked = await receive_type(app, "acked")
        assert acked["id"] == str(waiting.id)
        await app.send_json_to({"type": "ack", "id": str(waiting.id)})  # idempotent
        assert (await receive_type(app, "acked"))["acked_at"] == acked["acked_at"]
        await app.disconnect()

        # Acknowledged: the next connection starts with the next push, not this one again.
        live = await database_sync_to_async(do_send_push)(device, "task", {"title": "核查 verify"})
        app = await field_app(token)
        assert (await receive_type(app, "push"))["id"] == str(live.id)
        await app.disconnect()

    run(scenario())
    stored = Push.objects.get(id=waiting.id)
    assert stored.attempts == 2 and stored.delivered_at is not None and stored.acked_at is not None
    assert stored.delivered_at <= stored.last_delivered_at <= stored.acked_at


def test_live_push_through_the_api_and_jurisdiction(world):  # noqa: F811
    device = world.vehicles["a1"].device_id

    def api(who: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {world.api_tokens[who]}"}
        if body is None:
            return in_db_thread(lambda: getattr(Client(), method)(path, **headers))
        return in_db_thread(lambda: getattr(Client(), method)(path, data=json.dumps(body), content_type="application/json", **headers))

    async def scenario() -> str:
        app = await field_app(world.device_tokens[device])
        payload = {"device_id": device, "kind": "map_push", "payload": {"camera": {"code": "CAM-1"}}}
        assert (await database_sync_to_async(api)("district_b", "post", "/api/pushes", payload)).status_code == 404
        assert (await database_sync_to_async(api)("officer_a1", "post", "/api/pushes", payload)).status_code == 403
        bad = await database_sync_to_async(api)("district_a", "post", "/api/pushes", {**payload, "kind": "x"})
        assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
        created = await database_sync_to_async(api)("district_a", "post", "/api/pushes", payload)
        assert created.status_code == 201
        push = await receive_type(app, "push")
        assert push["id"] == created.json()["id"] and push["payload"] == {"camera": {"code": "CAM-1"}}
        await app.send_json_to({"type": "ack", "id": push["id"]})
        await receive_type(app, "acked")
        await app.disconnect()
        return push["id"]

    push_id = run(scenario())
    detail = api("street_a1", "get", f"/api/pushes/{push_id}").json()
    assert detail["attempts"] == 1 and detail["delivered_at"] and detail["acked_at"]
    # Outside one's jurisdiction a push answers exactly as an id that does not exist (issue 14).
    foreign, unknown = api("district_b", "get", f"/api/pushes/{push_id}"), api("district_b", "get", f"/api/pushes/{uuid.uuid4()}")
    assert (foreign.status_code, foreign.content, foreign["Content-Type"]) == \
        (unknown.status_code, unknown.content, unknown["Content-Type"]) == (404, unknown.content, "application/problem+json")


def test_field_socket_carries_fixes_and_survives_bad_frames(world):  # noqa: F811
    a1, a2 = world.officers["a1"].device_id, world.officers["a2"].device_id

    async def scenario() -> None:
        app = await field_app(world.device_tokens[a1])
        await app.send_json_to({"type": "fix", "ref": 1, "fix": fix(a1, 116.21, 39.81)})
        result = await receive_type(app, "fix_result")
        assert result["ref"] == 1 and result["accepted"] == 1
        own = {k: v for k, v in fix(a1, 116.22, 39.82).items() if k != "device_id"}  # defaults to this device
        await app.send_json_to({"type": "fixes", "ref": 2, "fixes": [own, fix(a2, 116.26, 39.8), "junk"]})
        result = await receive_type(app, "fix_result")
        assert [r.get("reason", r["status"]) for r in result["results"]] == ["accepted", "device_not_allowed",
                                                                               "malformed_fix"]
        for bad, error in [("{", "malformed_json"), ('{"type": "fixes", "fixes": 5}', "bad_frame"),
                           ('{"type": "ack", "id": "not-a-uuid"}', "invalid_ack"),
                           ('{"type": "ack", "id": "00000000-0000-0000-0000-000000000000"}', "invalid_ack")]:
            await app.send_to(text_data=bad)
            assert (await receive(app))["error"] == error
        await app.send_json_to({"type": "ping"})
        assert (await receive(app))["type"] == "pong"
        await app.disconnect()

        for token in ("dev_wrong", world.gateway_token):
            refused = WebsocketCommunicator(application, f"/ws/field?token={token}")
            await refused.connect(timeout=WAIT)
            assert (await receive(refused))["type"] == "error"
            assert (await refused.receive_output(timeout=WAIT))["type"] == "websocket.close"

    run(scenario())


def test_a_device_cannot_ack_another_devices_push(world):  # noqa: F811
    a1, a2 = world.officers["a1"].device_id, world.officers["a2"].device_id
    push = send_push(a1, "for a1 only")

    async def scenario() -> None:
        app = await field_app(world.device_tokens[a2])
        await app.send_json_to({"type": "ack", "id": str(push.id)})
        assert (await receive(app))["error"] == "invalid_ack"
        await app.disconnect()

    run(scenario())
    assert Push.objects.get(id=push.id).acked_at is None


def test_an_ack_whose_answer_finds_the_phone_gone_stands_and_logs_no_failure(world, monkeypatch, caplog):  # noqa: F811
    """The phone acknowledges and leaves before the `acked` answer: the server's send raises (an
    OSError, uvicorn's ClientDisconnected); the acknowledgement is recorded all the same, and the
    frame is not reported as a server failure."""
    from realtime.consumers import FieldConsumer

    device = world.officers["a1"].device_id
    waiting = send_push(device, "离开 leaving")
    original = FieldConsumer.send_json

    async def send_json(self: Any, message: dict[str, Any]) -> None:
        if message.get("type") == "acked":
            raise ConnectionResetError("the phone is gone")
        await original(self, message)

    monkeypatch.setattr(FieldConsumer, "send_json", send_json)

    async def scenario() -> None:
        app = await field_app(world.device_tokens[device])
        assert (await receive_type(app, "push"))["id"] == str(waiting.id)
        await app.send_json_to({"type": "ack", "id": str(waiting.id)})
        await app.send_json_to({"type": "ping", "ref": 1})  # answered after the ack was handled
        assert (await receive_type(app, "pong"))["ref"] == 1
        await app.disconnect()

    with caplog.at_level("ERROR", logger="realtime.consumers"):
        run(scenario())
    assert Push.objects.get(id=waiting.id).acked_at is not None
    assert not [r for r in caplog.records if "frame failed" in r.getMessage()]
