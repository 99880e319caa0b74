"""Fan-out benchmark: with --rate fixes/s flowing through the batch API and --screens screens
subscribed on /ws/map (city-wide, or --district-screens of them on one district each), the
latency from commit to screen (p50, p99) and the server's memory (RSS) over the run.

The load is offered in --ticks batches a second over up to --inflight concurrent connections (as
many devices and gateways post at once), so a slow request does not lower the offered rate until
all connections are busy. Screens negotiate permessage-deflate as browsers do (--no-compression
to measure without it).

Start a server yourself against the dev database (fixtures loaded), then run, e.g.:
    .venv/bin/python -m uvicorn config.asgi:application --http config.http:CoalescingHttpToolsProtocol --port 18500 --no-access-log --log-level warning &
    .venv/bin/python bench/fanout.py --url http://127.0.0.1:18500 --pid $! --duration 600
Latency is measured per unit update: arrival time at the screen minus the server's commit time
(committed_at in each frame record), on the same machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import FixSource, HttpConnection, django_setup, monotonic, post_batch, rss_mib  # noqa: E402

COMMITTED_AT = re.compile(r'"committed_at": ?([0-9.]+)')


def screen_token() -> str:
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken, Profile, Role

    user, _ = get_user_model().objects.get_or_create(username="bench-screen")
    Profile.objects.get_or_create(user=user, defaults={"role": Role.WALL_DISPLAY})
    return ApiToken.issue(user, "bench")[1]


SLOW_S = 1.0  # an update later than this is a stall worth locating in the run


async def screen(url: str, token: str, subscription: dict, samples: list[float], counts: dict[str, int],
                 stop: asyncio.Event, compression: bool, slow: dict[int, float]) -> None:
    from websockets.asyncio.client import connect

    async with connect(f"{url.replace('http', 'ws', 1)}/ws/map?token={token}", max_size=64 * 2**20,
                       compression="deflate" if compression else None) as ws:
        await ws.send(json.dumps({"type": "subscribe", **subscription}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            assert isinstance(raw, str)  # the server sends text frames only
            now = time.time()
            if raw.startswith('{"type":"frame"'):  # the client's own time is latency too: skip json.loads
                counts["frame"] = counts.get("frame", 0) + 1
                latencies = [now - float(t) for t in COMMITTED_AT.findall(raw)]
                samples.extend(latencies)
                if latencies and max(latencies) > SLOW_S:  # which second of the clock, and how late
                    slow[int(now)] = max(slow.get(int(now), 0.0), max(latencies))
                continue
            message = json.loads(raw)
            counts[message["type"]] = counts.get(message["type"], 0) + 1


def subscriptions(args: argparse.Namespace, districts: list[str]) -> list[dict]:
    city: list[dict[str, str]] = [{}] * (args.screens - args.district_screens)
    return city + [{"district": districts[i % len(districts)]} for i in range(args.district_screens)]


async def run(args: argparse.Namespace, token: str, gateway: str, source: FixSource, districts: list[str]) -> dict:
    samples: list[float] = []
    counts: dict[str, int] = {}
    memory: list[tuple[float, float]] = []
    stop = asyncio.Event()
    slow: dict[int, float] = {}
    screens = [asyncio.create_task(screen(args.url, token, sub, samples, counts, stop, not args.no_compression, slow))
               for sub in subscriptions(args, districts)]
    lag: dict[int, float] = {}
    lag_probe = asyncio.create_task(loop_lag(stop, lag))
    await asyncio.sleep(args.warmup)  # screens connected and their snapshots sent before the load
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(args.inflight):
        idle.put_nowait(HttpConnection(args.url))
    sent, offered, errors, request_s = [0], [0], [], []

    async def post(conn: HttpConnection, fixes: list[dict]) -> None:
        offered[0] += len(fixes)
        began = monotonic()
        try:
            result = await post_batch(conn, gateway, fixes)
            request_s.append(monotonic() - began)
            sent[0] += result["accepted"]  # not `+= await ...`: that reads sent[0] before awaiting
        except Exception as error:  # counted and reported, never hidden
            errors.append(repr(error)[:200])
            conn.close()
            conn = HttpConnection(args.url)
        finally:
            idle.put_nowait(conn)

    tick = 1.0 / args.ticks
    per_tick = max(1, round(args.rate / args.ticks))
    started, started_wall = monotonic(), time.time()
    next_tick = started
    posts: set[asyncio.Task[None]] = set()
    while monotonic() - started < args.duration:
        conn = await idle.get()  # all connections busy: the offered rate drops (reported)
        task = asyncio.create_task(post(conn, source.take(per_tick)))
        posts.add(task)
        task.add_done_callback(posts.discard)
        if args.pid and (not memory or monotonic() - started - memory[-1][0] >= args.rss_every):
            memory.append((monotonic() - started, rss_mib(args.pid) or 0.0))
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - monotonic()))  # pacing the offered load
    await asyncio.gather(*posts)
    elapsed = monotonic() - started
    if args.pid:
        memory.append((elapsed, rss_mib(args.pid) or 0.0))
    await asyncio.sleep(1.0)  # let the last frames arrive before closing
    stop.set()
    await asyncio.gather(*screens, lag_probe, return_exceptions=True)
    while not idle.empty():
        idle.get_nowait().close()
    return {"samples": samples, "counts": counts, "memory": memory, "sent": sent[0], "offered": offered[0],
            "errors": errors, "elapsed": elapsed, "request_s": request_s, "slow": slow, "lag": lag,
            "started_wall": started_wall}


async def loop_lag(stop: asyncio.Event, lag: dict[int, float], every_s: float = 0.1) -> None:
    """This client's own event-loop lag, per second of the clock where it passed SLOW_S / 4: a
    screen's update that is late because this process was busy is the client's stall, not the
    server's."""
    while not stop.is_set():
        due = monotonic() + every_s
        await asyncio.sleep(every_s)  # the probe itself: how late does the loop wake it?
        late = monotonic() - due
        if late > SLOW_S / 4:
            lag[int(time.time())] = max(lag.get(int(time.time()), 0.0), late)


def stalls(slow: dict[int, float], lag: dict[int, float], first: float) -> str:
    """Where in the run updates were later than SLOW_S, and this client's loop lag near those times."""
    if not slow:
        return f"no update later than {SLOW_S:.0f} s"
    spans = ", ".join(f"{second - first:.0f} s: {late * 1000:.0f} ms" for second, late in sorted(slow.items())[:20])
    own = ", ".join(f"{second - first:.0f} s: {late * 1000:.0f} ms" for second, late in sorted(lag.items())[:20])
    clock = time.strftime("%H:%M:%S UTC", time.gmtime(min(slow)))  # to line up with the server's and PostgreSQL's logs
    return f"updates later than {SLOW_S:.0f} s at (run second: worst) {spans} (the first at {clock}); this " \
           f"client's own loop lag > {SLOW_S * 250:.0f} ms at {own or 'no time'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:18500")
    parser.add_argument("--pid", type=int, help="the server's process id, to sample its memory")
    parser.add_argument("--rate", type=float, default=2000.0, help="fixes per second offered")
    parser.add_argument("--ticks", type=int, default=10, help="batches per second")
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--district-screens", type=int, default=0, help="how many of the screens watch one district")
    parser.add_argument("--inflight", type=int, default=4, help="concurrent ingest connections at most")
    parser.add_argument("--no-compression", action="store_true", help="screens do not negotiate permessage-deflate")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds between subscribing and the load")
    parser.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    django_setup()
    from django.db import connection

    from bench.common import command_line, percentiles, record, table
    from realtime.devices import all_device_ids, issue_device_token
    from realtime.units import district_codes

    device_ids = all_device_ids()
    if not device_ids:
        sys.exit("no devices: load the fixtures first (make fixtures)")
    token, gateway = screen_token(), issue_device_token("bench-fanout", gateway=True)
    districts = district_codes()
    connection.close()
    result = asyncio.run(run(args, token, gateway, FixSource(device_ids, seed=11), districts))
    p = percentiles([s * 1000 for s in result["samples"]]) if result["samples"] else {}
    memory = result["memory"]
    sent_ok = result["sent"] / result["elapsed"] >= 0.97 * args.rate
    mix = f"{args.screens - args.district_screens} city + {args.district_screens} district"
    rows = [[f"{result['sent'] / result['elapsed']:,.0f}", mix, f"{len(result['samples']):,}",
             f"{p.get('p50', 0):.0f}", f"{p.get('p99', 0):.0f}", f"{p.get('max', 0):.0f}",
             f"{memory[0][1]:.0f} -> {max(m for _, m in memory):.0f} -> {memory[-1][1]:.0f}" if memory else "n/a"]]
    text = table(["fixes/s", "screens", "updates received", "p50 ms", "p99 ms", "max ms", "RSS MiB first -> max -> last"], rows)
    req = percentiles([r * 1000 for r in result["request_s"]]) if result["request_s"] else {}
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    step = max(1, len(memory) // 10)
    curve = ", ".join(f"{t:.0f} s {m:.0f}" for t, m in [*memory[:-1:step], memory[-1]]) if memory else "n/a"
    notes = (f"{result['elapsed']:.0f} s run, {args.rate:,.0f} fixes/s offered in {args.ticks} batches/s over up to "
             f"{args.inflight} connections ({result['offered'] / result['elapsed']:,.0f}/s offered, {result['sent']:,} accepted, "
             f"{len(result['errors'])} failed requests{': ' + result['errors'][0] if result['errors'] else ''}; "
             f"request p50 {req.get('p50', 0):.0f} ms, p99 {req.get('p99', 0):.0f} ms; this client used "
             f"{cpu.ru_utime + cpu.ru_stime:.0f} s CPU); permessage-deflate {'off' if args.no_compression else 'on'}; messages "
             f"per type: {result['counts']}. RSS MiB over time: {curve}. "
             f"{stalls(result['slow'], result['lag'], result['started_wall'])}. Target p99 <= 500 ms at "
             f"{args.rate:,.0f} fixes/s: {'meets' if p and p['p99'] <= 500 and sent_ok else 'MISSES'}.")
    print(text)
    print(notes)
    if not args.no_record:
        record("Fan-out (bench/fanout.py)", command_line(), text, notes)


if __name__ == "__main__":
    main()
