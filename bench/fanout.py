"""Fan-out benchmark: with --rate fixes/s flowing through the batch API and --screens city-wide
screens subscribed on /ws/map, the latency from commit to screen (p50, p99) and the server's
memory (RSS) over the run.

Start a server yourself against the dev database (fixtures loaded), then run, e.g.:
    .venv/bin/python -m uvicorn config.asgi:application --port 18500 --no-access-log --log-level warning &
    .venv/bin/python bench/fanout.py --url http://127.0.0.1:18500 --pid $! --duration 600
Latency is measured per unit update: arrival time at the screen minus the server's commit time
(committed_at in each frame record), on the same machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import FixSource, HttpConnection, django_setup, monotonic, post_batch, rss_mib  # noqa: E402


def screen_token() -> str:
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken, Profile, Role

    user, _ = get_user_model().objects.get_or_create(username="bench-screen")
    Profile.objects.get_or_create(user=user, defaults={"role": Role.WALL_DISPLAY})
    return ApiToken.issue(user, "bench")[1]


async def screen(url: str, token: str, samples: list[float], counts: dict[str, int], stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(f"{url.replace('http', 'ws', 1)}/ws/map?token={token}", max_size=64 * 2**20) as ws:
        await ws.send(json.dumps({"type": "subscribe"}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            counts[message["type"]] = counts.get(message["type"], 0) + 1
            if message["type"] == "frame":
                samples.extend(now - u["committed_at"] for u in message["units"] if "committed_at" in u)


async def run(args: argparse.Namespace, token: str, gateway: str, source: FixSource) -> dict:
    samples: list[float] = []
    counts: dict[str, int] = {}
    memory: list[tuple[float, float]] = []
    stop = asyncio.Event()
    screens = [asyncio.create_task(screen(args.url, token, samples, counts, stop)) for _ in range(args.screens)]
    conn = HttpConnection(args.url)
    tick = 1.0 / args.ticks
    per_tick = max(1, round(args.rate / args.ticks))
    started = monotonic()
    sent = 0
    next_tick = started
    while monotonic() - started < args.duration:
        result = await post_batch(conn, gateway, source.take(per_tick))
        sent += result["accepted"]
        if args.pid and (not memory or monotonic() - started - memory[-1][0] >= 10):
            memory.append((monotonic() - started, rss_mib(args.pid) or 0.0))
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - monotonic()))  # pacing the offered load
    elapsed = monotonic() - started
    await asyncio.sleep(1.0)  # let the last frames arrive before closing
    stop.set()
    await asyncio.gather(*screens, return_exceptions=True)
    conn.close()
    return {"samples": samples, "counts": counts, "memory": memory, "sent": sent, "elapsed": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:18500")
    parser.add_argument("--pid", type=int, help="the server's process id, to sample its memory")
    parser.add_argument("--rate", type=float, default=2000.0, help="fixes per second offered")
    parser.add_argument("--ticks", type=int, default=10, help="batches per second")
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    django_setup()
    from django.db import connection

    from bench.common import command_line, percentiles, record, table
    from realtime.devices import all_device_ids, issue_device_token

    device_ids = all_device_ids()
    if not device_ids:
        sys.exit("no devices: load the fixtures first (make fixtures)")
    token, gateway = screen_token(), issue_device_token("bench-fanout", gateway=True)
    connection.close()
    result = asyncio.run(run(args, token, gateway, FixSource(device_ids, seed=11)))
    p = percentiles([s * 1000 for s in result["samples"]]) if result["samples"] else {}
    memory = result["memory"]
    rows = [[f"{result['sent'] / result['elapsed']:,.0f}", args.screens, f"{len(result['samples']):,}",
             f"{p.get('p50', 0):.0f}", f"{p.get('p99', 0):.0f}", f"{p.get('max', 0):.0f}",
             f"{memory[0][1]:.0f} -> {max(m for _, m in memory):.0f} -> {memory[-1][1]:.0f}" if memory else "n/a"]]
    text = table(["fixes/s", "screens", "updates received", "p50 ms", "p99 ms", "max ms", "RSS MiB first -> max -> last"], rows)
    notes = (f"{result['elapsed']:.0f} s run; messages per type: {result['counts']}. Target p99 <= 500 ms: "
             f"{'meets' if p and p['p99'] <= 500 else 'MISSES'}.")
    print(text)
    print(notes)
    if not args.no_record:
        record("Fan-out (bench/fanout.py)", command_line(), text, notes)


if __name__ == "__main__":
    main()
