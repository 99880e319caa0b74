"""The `tasks` layer of /ws/map: a screen that asks for it starts from the open tasks of its
scope and then gets a `task` message for every change there; a screen of another district, or
without the layer, receives nothing of it."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.gis.geos import Point
from django.utils import timezone

from command.actions import do_action
from command.actor import Actor
from command.models import Task
from config.asgi import application
from tests.realtime_support import (  # noqa: F401
    DISTRICT_A,
    DISTRICT_B,
    STREET_A1,
    STREET_B1,
    WAIT,
    in_db_thread,
    receive_type,
    run,
    world,
)

pytestmark = pytest.mark.django_db


def make_task(district: str, street: str, lon: float, lat: float, number: str) -> int:
    now = timezone.now()
    task = Task.objects.create(number=number, state="reported", source="patrol", category_id="E0501",
                               geom=Point(lon, lat, srid=4490), district_id=district, street_id=street,
                               created_at=now, updated_at=now)
    return task.pk


async def open_screen(world_: Any, who: str, layers: list[str]) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    screen = WebsocketCommunicator(application, f"/ws/map?token={world_.api_tokens[who]}")
    connected, _ = await screen.connect(timeout=WAIT)
    assert connected
    await receive_type(screen, "hello")
    await screen.send_json_to({"type": "subscribe", "layers": layers})
    return screen, await receive_type(screen, "snapshot")


def test_task_messages_reach_the_screens_of_their_place_only(world) -> None:  # noqa: F811
    tag = world.tag
    task_a = in_db_thread(make_task, DISTRICT_A, STREET_A1, 116.22, 39.85, f"T{tag}-A")
    task_b = in_db_thread(make_task, DISTRICT_B, STREET_B1, 116.35, 39.85, f"T{tag}-B")
    try:
        async def scenario() -> None:
            screen_a, snap_a = await open_screen(world, "district_a", ["officers", "tasks"])
            screen_b, _ = await open_screen(world, "district_b", ["tasks"])
            plain, _ = await open_screen(world, "district_a", ["officers"])
            assert snap_a["subscription"]["layers"] == ["officers", "tasks"]
            start_a = await receive_type(screen_a, "tasks")
            start_b = await receive_type(screen_b, "tasks")
            assert task_a in [t["id"] for t in start_a["tasks"]] and task_b not in [t["id"] for t in start_a["tasks"]]
            assert [t["id"] for t in start_b["tasks"]] == [task_b]

            actor_a = Actor.of(world.users["district_a"])
            in_db_thread(do_action, actor_a, task_a, "file", {})
            message = await receive_type(screen_a, "task")
            assert message["action"] == "file" and message["task"]["id"] == task_a
            assert message["task"]["state"] == "filed" and message["event"]["actor"] == actor_a.name

            # District B's screen gets B's change first: A's never reached it.
            in_db_thread(do_action, Actor.of(world.users["district_b"]), task_b, "file", {})
            first = await receive_type(screen_b, "task")
            assert first["task"]["id"] == task_b
            # A screen of district A without the tasks layer gets none of A's changes: after one
            # more change in A (seen by screen A), a ping's pong comes with no task before it.
            in_db_thread(do_action, actor_a, task_a, "cancel", {"reason": "测试"})
            assert (await receive_type(screen_a, "task"))["task"]["state"] == "cancelled"
            await plain.send_json_to({"type": "ping", "ref": 1})
            while True:
                message = await receive_type(plain, "task", "pong")
                assert message["type"] != "task", message
                if message["type"] == "pong":
                    break
            for screen in (screen_a, screen_b, plain):
                await screen.disconnect()

        run(scenario())
    finally:
        in_db_thread(lambda: Task.objects.filter(id__in=[task_a, task_b]).delete())
