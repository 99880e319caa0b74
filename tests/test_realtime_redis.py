"""The Redis channel layer: in one process, and across two real server processes (an event
committed in one reaches a screen and a field app connected to the other)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async

from config.http import server_command
from realtime.actions import do_ingest_fixes
from tests.fault_support import REDIS_SERVER, wait_until
from tests.live_server import free_port, session_database_url
from tests.realtime_support import WAIT, fix, run, world  # noqa: F401
from tests.test_realtime_map import frames_until, open_screen

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed (scripts/apt.sh installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="onemap-redis-"))
    sock = tmp / "redis.sock"
    process = subprocess.Popen([REDIS_SERVER, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                                "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(sock))

    def pong() -> bool:
        try:
            return bool(client.ping())
        except (redis.ConnectionError, FileNotFoundError):
            assert process.poll() is None, "redis-server exited"
            return False

    try:
        wait_until(pong, 20, "redis-server")
        yield f"unix://{sock}"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def redis_layer(settings, redis_url):  # type: ignore[no-untyped-def]
    redis.Redis.from_url(redis_url).flushall()
    # The shape config/settings.py builds from REDIS_URL.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
        "hosts": [{"address": redis_url, "socket_timeout": 30, "socket_connect_timeout": 5}], "capacity": 2000}}}
    return redis_url


def test_screen_over_the_redis_layer(world, redis_layer):  # noqa: F811
    a1 = world.officers["a1"]

    async def scenario() -> None:
        screen, _ = await open_screen(world, "district_a")
        await database_sync_to_async(do_ingest_fixes)([fix(a1.device_id, 116.21, 39.81)], world.gateway)
        state: dict[str, Any] = {}
        await frames_until(screen, state, lambda s: f"officer:{a1.id}" in s)
        await screen.disconnect()

    run(scenario())


@pytest.fixture
def two_servers(redis_layer) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "REDIS_URL": redis_layer, "DATABASE_URL": session_database_url(), "PYTHONUNBUFFERED": "1"}
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen(server_command(sys.executable, "127.0.0.1", port, "--log-level", "warning"),
                                cwd=ROOT, env=env) for port in ports]

    def answering(port: int) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/positions", timeout=2)  # noqa: S310
        except urllib.error.HTTPError:
            return True  # 405: the server is up
        except OSError:
            assert all(s.poll() is None for s in servers), "a server exited"
            return False
        return True

    try:
        for port in ports:
            wait_until(lambda p=port: answering(p), 60, f"the server on port {port}")
        yield [f"127.0.0.1:{port}" for port in ports]
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def post(url: str, body: Any, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=WAIT) as response:  # noqa: S310
        return json.loads(response.read())


def test_two_server_processes_share_subscribers(world, two_servers):  # noqa: F811
    from websockets.asyncio.client import connect

    first, second = two_servers
    a1, device = world.officers["a1"], world.vehicles["a1"].device_id

    async def next_of(ws: Any, kind: str) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            if message["type"] == kind:
                return message

    async def scenario() -> None:
        async with connect(f"ws://{second}/ws/map?token={world.api_tokens['district_a']}") as screen, \
                connect(f"ws://{second}/ws/field?token={world.device_tokens[device]}") as phone:
            await screen.send(json.dumps({"type": "subscribe"}))
            assert (await next_of(screen, "snapshot"))["subscription"]["scope"] == "district 110198"
            await next_of(phone, "hello")
            result = await asyncio.to_thread(post, f"http://{first}/api/positions",
                                             [fix(a1.device_id, 116.21, 39.81)], world.gateway_token)
            assert result["accepted"] == 1
            frame = await next_of(screen, "frame")
            assert [u["key"] for u in frame["units"]] == [f"officer:{a1.id}"]
            push = await asyncio.to_thread(post, f"http://{first}/api/pushes",
                                           {"device_id": device, "kind": "task", "payload": {"title": "巡查"}},
                                           world.api_tokens["district_a"])
            assert (await next_of(phone, "push"))["id"] == push["id"]

    run(scenario())
