"""Support for the fault tests: services the test owns (a private Redis it can kill and start
again on the same socket), screens as a browser holds them (a socket read continuously, its state
kept as snapshot + frames), and HTTP clients that record the status of every answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import client as http_client
from pathlib import Path
from typing import Any

import redis

from tests.realtime_support import apply_frame, snapshot_state

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll (not sleep-and-hope): check, back off briefly, give up after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class PrivateRedis:
    """A redis-server of the test's own on a Unix socket: stopped (SIGKILL, as a crash) and
    started again on the same socket, empty — Redis keeps nothing across a restart here."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.sock = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.sock), socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()

        def pong() -> bool:
            try:
                return bool(client.ping())
            except (redis.ConnectionError, FileNotFoundError):
                assert self.process is not None and self.process.poll() is None, "redis-server exited"
                return False

        try:
            wait_until(pong, 20, "redis-server")
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)
            self.process = None
        self.sock.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def http(method: str, url: str, body: Any = None, token: str | None = None,
         timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    """(status, headers with lower-case names, JSON body or None) — an error status is an answer,
    not an exception."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our own server)
            status, answer_headers, raw = response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, _lower(error.headers), error.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, answer_headers, parsed


@dataclass
class Screen:
    """A /ws/map socket read continuously, as a browser tab does: its state is the snapshot with
    every frame applied; every message is kept; stale marks are noted with the time they came."""

    ws: Any
    messages: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    stale_marks: list[tuple[float, str]] = field(default_factory=list)
    close_code: int | None = None
    closed: bool = False
    task: asyncio.Task[None] | None = None
    stream_id: str | None = None
    seq: int = 0

    @classmethod
    async def open(cls, base: str, token: str, **subscription: Any) -> Screen:
        from websockets.asyncio.client import connect

        ws = await connect(f"ws://{base.split('://')[-1]}/ws/map?token={token}", open_timeout=10,
                           ping_interval=None)
        screen = cls(ws)
        await ws.send(json.dumps({"type": "subscribe", **subscription}))
        screen.task = asyncio.get_running_loop().create_task(screen._read())
        await until(lambda: screen.closed or screen.types("snapshot", "error"), 20, "a snapshot")
        assert screen.types("snapshot"), f"no snapshot: {screen.messages[-3:]}, closed={screen.close_code}"
        return screen

    async def reconnect(self, base: str, token: str) -> float:
        """What the map does when its socket drops: connect again and resume its stream (a new
        snapshot follows when it cannot be resumed). Seconds until the screen is whole again."""
        from websockets.asyncio.client import connect

        started = time.monotonic()
        count = len(self.messages)
        self.ws = await connect(f"ws://{base.split('://')[-1]}/ws/map?token={token}", open_timeout=10,
                                ping_interval=None)
        self.closed, self.close_code = False, None
        await self.ws.send(json.dumps({"type": "subscribe", "resume": {"stream": self.stream_id, "seq": self.seq}}))
        self.task = asyncio.get_running_loop().create_task(self._read())
        await until(lambda: any(m["type"] in ("snapshot", "resumed") for m in self.messages[count:]), 20,
                    "a snapshot or a resume after reconnecting")
        return time.monotonic() - started

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message["type"] in ("snapshot", "frame"):
                    self.stream_id, self.seq = message["stream"], message["seq"]
                if message["type"] == "snapshot":
                    self.state = snapshot_state(message)
                elif message["type"] == "frame":
                    for unit in message["units"]:
                        if unit.get("stale"):
                            self.stale_marks.append((time.time(), unit["key"]))
                    apply_frame(self.state, message)
        except ConnectionClosed:
            pass
        self.close_code = self.ws.close_code
        self.closed = True

    def types(self, *kinds: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] in kinds]

    def at(self) -> dict[str, str]:
        """What the screen shows: each unit's fix time."""
        return {key: unit["at"] for key, unit in self.state.items()}

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await asyncio.wait([self.task], timeout=5)


def run_scenario(coro: Any, timeout: float = 170) -> Any:
    """Run an async scenario in a fresh loop, cancelling what it leaves behind."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout=timeout))
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=5))
        loop.close()


@dataclass
class Answer:
    at: float  # time.time() when sent
    took: float  # seconds
    status: int  # 0: no answer (the connection was cut)
    headers: dict[str, str]
    body: Any
    fixes: list[tuple[str, datetime]] = field(default_factory=list)  # what the request carried


class Reporter:
    """Devices reporting through POST /api/positions, one batch every `every` seconds (a little
    move each time): every answer is kept, and every fix the server acknowledged as accepted."""

    def __init__(self, base: str, token: str, devices: dict[str, tuple[float, float]], every: float = 0.4) -> None:
        self.base, self.token, self.devices, self.every = base, token, devices, every
        self.answers: list[Answer] = []
        self.acknowledged: list[tuple[str, datetime]] = []
        self.sent = 0
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Reporter:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self.task is not None:
            await self.task

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.report_once()
            try:
                await asyncio.wait_for(self._stop.wait(), self.every)
            except TimeoutError:
                pass

    async def report_once(self) -> Answer:
        self.sent += 1
        now = datetime.now(UTC)
        fixes = [{"device_id": device, "time": now.isoformat(), "lon": round(lon + (self.sent % 50) * 1e-4, 6),
                  "lat": lat} for device, (lon, lat) in self.devices.items()]
        started = time.time()
        try:
            status, headers, body = await asyncio.to_thread(
                http, "POST", f"{self.base}/api/positions", fixes, self.token, 40)
        except (OSError, http_client.HTTPException) as error:  # no answer at all: nothing acknowledged
            status, headers, body = 0, {}, repr(error)
        answer = Answer(started, time.time() - started, status, headers, body, [(d, now) for d in self.devices])
        self.answers.append(answer)
        if status == 200:
            for result in body["results"]:
                if result["status"] == "accepted":
                    self.acknowledged.append((fixes[result["index"]]["device_id"], now))
        return answer

    def latest(self, device: str) -> datetime | None:
        times = [t for d, t in self.acknowledged if d == device]
        return max(times) if times else None


def missing_fixes(acknowledged: list[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    """The acknowledged fixes that are not in the database (read on the test's worker thread)."""
    from geo.models import PositionFix
    from tests.realtime_support import in_db_thread

    devices = sorted({d for d, _ in acknowledged})

    def stored() -> set[tuple[str, datetime]]:
        return set(PositionFix.objects.filter(device_id__in=devices).values_list("device_id", "recorded_at"))

    have = in_db_thread(stored)
    return [pair for pair in acknowledged if pair not in have]


PGBIN = Path("/usr/lib/postgresql/15/bin")
SEED_WORLD = """
import json, django
django.setup()
from tests.realtime_support import _make_world
w = _make_world()
print(json.dumps({"officers": {n: [o.id, o.device_id] for n, o in w.officers.items()},
                  "api_tokens": w.api_tokens, "gateway_token": w.gateway_token}))
"""


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory, Unix socket
    only), with OneMap's migrations and a small world: what a fault test may kill and restart.
    PostgreSQL refuses to run as root, so as root the cluster belongs to `postgres` (as
    scripts/pg.sh does). fsync is off: the tests kill processes, not the machine — what a killed
    server wrote is in the kernel's page cache and survives, as it would with fsync on."""

    def __init__(self, root: Path, port: int) -> None:
        self.dir = root
        self.data = root / "data"
        self.port = port
        self.root_user = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://onemap@/onemap?host={self.dir}&port={self.port}"

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.root_user else list(args)

    def create(self) -> dict[str, Any]:
        if self.root_user:
            shutil.chown(self.dir, "postgres")
        subprocess.run(self._as_owner(str(PGBIN / "initdb"), "-D", str(self.data), "-U", "onemap", "--auth=trust",
                                      "-E", "UTF8", "--locale=C.UTF-8", "-N"), check=True, capture_output=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.dir}'\nport = {self.port}\n"
                       "fsync = off\nshared_buffers = 32MB\nmax_connections = 60\n")
        self.start()
        subprocess.run([str(PGBIN / "createdb"), "-h", str(self.dir), "-p", str(self.port), "-U", "onemap", "onemap"],
                       check=True, capture_output=True)
        env = {**os.environ, "DATABASE_URL": self.url, "DJANGO_SETTINGS_MODULE": "config.settings"}
        root = Path(__file__).resolve().parent.parent
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=root, env=env, check=True)
        seeded = subprocess.run([sys.executable, "-c", SEED_WORLD], cwd=root, env=env, check=True,
                                capture_output=True, text=True)
        world: dict[str, Any] = json.loads(seeded.stdout.strip().splitlines()[-1])
        return world

    def start(self) -> None:
        subprocess.run(self._as_owner(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                                      "-w", "-t", "60", "start"), check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._as_owner(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
                       check=False, capture_output=True)

    def kill(self) -> None:
        """SIGKILL to the postmaster and every backend: a crash, recovered at the next start."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        for pid in [postmaster, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        def gone() -> bool:
            return all(not Path(f"/proc/{pid}").exists() for pid in [postmaster, *map(int, children)])

        wait_until(gone, 20, "the killed PostgreSQL processes to exit")

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(host=str(self.dir), port=self.port, user="onemap", dbname="onemap") as conn:
            return conn.execute(sql, params).fetchall()


def connection_owner(candidates: list[int], client_port: int, server_port: int) -> int | None:
    """Which of the server's processes holds the TCP connection from `client_port` (by the
    socket's inode in /proc/net/tcp and the processes' open file descriptors)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            for row in list(rows)[1:]:
                cols = row.split()
                local, remote, inode = cols[1], cols[2], cols[9]
                if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(f"socket:[{inode}]")
    for pid in candidates:
        fds = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(FileNotFoundError, PermissionError):
            for fd in fds.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
    return None


def worker_pids(server_pid: int) -> list[int]:
    """uvicorn's worker processes (--workers N): the supervisor's children that are Python."""
    children = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in children if "spawn_main" in _cmdline(int(pid))]


def _cmdline(pid: int) -> str:
    """A process's command line; "" if it ended meanwhile (a worker being replaced)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""
