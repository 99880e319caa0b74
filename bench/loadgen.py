"""Load generation shared by bench/ingest.py and bench/fanout.py: a minimal keep-alive HTTP/1.1
client on asyncio streams (no extra dependency), device tokens, and fixes with unique times."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


class HttpConnection:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class FixSource:
    """Fixes for every known device, round after round, each round timed just behind the wall
    clock (and at least 10 ms after the last), so every fix is new, moves its unit's latest
    position forward, and is as fresh as a real device's.

    Until 2026-11-29 a round was only 10 ms later than the one before, whatever the time it took
    (~5 s at 2,000 fixes/s): the fixes fell behind the clock by about a second a second, and
    ~115 s into a run every unit crossed the 120 s staleness line at once; that mass change, not
    the server's normal fan-out, was the one 6 s stall of the 10-minute fan-out runs."""

    def __init__(self, device_ids: list[str], seed: int = 7) -> None:
        self.device_ids = device_ids
        self.rng = random.Random(seed)
        self.round_at = datetime.now(UTC) - timedelta(seconds=2)
        self.i = 0
        self.positions = {d: (self.rng.uniform(116.25, 116.55), self.rng.uniform(39.80, 40.05)) for d in device_ids}

    def take(self, count: int) -> list[dict[str, Any]]:
        fixes = []
        n = len(self.device_ids)
        for _ in range(count):
            device = self.device_ids[self.i % n]
            if self.i % n == 0 and self.i:  # a new round
                self.round_at = max(datetime.now(UTC) - timedelta(seconds=1), self.round_at + timedelta(milliseconds=10))
            at = self.round_at
            lon, lat = self.positions[device]
            lon, lat = lon + self.rng.uniform(-2e-4, 2e-4), lat + self.rng.uniform(-2e-4, 2e-4)
            self.positions[device] = (lon, lat)
            fixes.append({"device_id": device, "time": at.isoformat(), "lon": round(lon, 7), "lat": round(lat, 7),
                          "speed": 1.4, "heading": 90.0, "accuracy": 5.0, "battery": 80})
            self.i += 1
        return fixes


async def post_batch(conn: HttpConnection, token: str, fixes: list[dict[str, Any]]) -> dict[str, Any]:
    status, body = await conn.request("POST", "/api/positions", json.dumps(fixes).encode(), {
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return json.loads(body)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(k) for k in (task / "children").read_text().split()]
    except OSError:
        pass
    return kids


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of `pid` and its child processes (uvicorn --workers N: the workers)."""
    if not pid:
        return None
    total, found = 0.0, False
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
                    found = True
        except OSError:
            continue
    return total if found else None


def monotonic() -> float:
    return time.monotonic()
