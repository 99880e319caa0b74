"""Ingest benchmark: sustained fixes/s through POST /api/positions (zero loss checked by counting
rows afterwards), and requests/s of the OsmAnd single-fix path.

Start a server yourself against the dev database (fixtures loaded), then run, e.g.:
    .venv/bin/python -m uvicorn config.asgi:application --http config.http:CoalescingHttpToolsProtocol --port 18500 --no-access-log --log-level warning &
    .venv/bin/python bench/ingest.py --url http://127.0.0.1:18500 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import FixSource, HttpConnection, django_setup, monotonic, post_batch  # noqa: E402


async def batch_phase(url: str, token: str, source: FixSource, batch: int, concurrency: int, duration: float) -> dict:
    totals: dict[str, float] = {"requests": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    deadline = monotonic() + duration

    async def worker() -> None:
        conn = HttpConnection(url)
        while monotonic() < deadline:
            try:
                result = await post_batch(conn, token, source.take(batch))
            except Exception as error:  # count, do not hide
                totals["errors"] += 1
                print("error:", error, file=sys.stderr)
                conn.close()
                conn = HttpConnection(url)
                continue
            totals["requests"] += 1
            for key in ("accepted", "duplicates", "rejected"):
                totals[key] += result[key]
        conn.close()

    started = monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    totals["seconds"] = monotonic() - started
    return totals


async def osmand_phase(url: str, tokens: dict[str, str], concurrency: int, duration: float) -> dict:
    totals: dict[str, float] = {"ok": 0, "failed": 0}
    deadline = monotonic() + duration
    devices = list(tokens)
    counter = [int(datetime.now(UTC).timestamp()) - 3600]

    async def worker(n: int) -> None:
        conn = HttpConnection(url)
        i = n
        while monotonic() < deadline:
            device = devices[i % len(devices)]
            i += concurrency
            counter[0] += 1  # one second apart per request: unique (device, time)
            path = (f"/ingest/osmand?token={tokens[device]}&id={device}&lat=39.9{i % 997:03d}&lon=116.4{i % 991:03d}"
                    f"&timestamp={counter[0]}&speed=2.0&bearing=90&accuracy=8&batt=77")
            status, _ = await conn.request("POST", path)
            totals["ok" if status == 200 else "failed"] += 1
        conn.close()

    started = monotonic()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    totals["seconds"] = monotonic() - started
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:18500")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--osmand-duration", type=float, default=10.0)
    parser.add_argument("--osmand-concurrency", type=int, default=8)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    django_setup()
    from django.db import connection

    from bench.common import command_line, record, table
    from realtime.devices import all_device_ids, issue_device_token, issue_device_tokens

    device_ids = all_device_ids()
    if not device_ids:
        sys.exit("no devices: load the fixtures first (make fixtures)")
    token = issue_device_token("bench-ingest", gateway=True)
    osmand_tokens = issue_device_tokens(device_ids[:200])
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        run_started = cursor.fetchone()[0]
    connection.close()  # no idle transaction or connection held during the run

    batch = asyncio.run(batch_phase(args.url, token, FixSource(device_ids), args.batch, args.concurrency, args.duration))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM geo_positionfix WHERE received_at >= %s AND device_id = ANY(%s)",
                       [run_started, device_ids])
        stored = cursor.fetchone()[0]
    osmand = asyncio.run(osmand_phase(args.url, osmand_tokens, args.osmand_concurrency, args.osmand_duration))

    rate = batch["accepted"] / batch["seconds"]
    lost = batch["accepted"] - stored
    rows = [
        ["batch API", f"{rate:,.0f} fixes/s", f"{batch['requests']} requests of {args.batch}, {args.concurrency} connections, "
         f"{batch['seconds']:.0f} s; accepted {batch['accepted']:,}, rows stored {stored:,} (lost {lost}), "
         f"duplicates {batch['duplicates']}, rejected {batch['rejected']}, errors {batch['errors']}"],
        ["OsmAnd single fix", f"{osmand['ok'] / osmand['seconds']:,.0f} requests/s",
         f"{args.osmand_concurrency} connections, {osmand['seconds']:.0f} s; ok {osmand['ok']:,}, failed {osmand['failed']}"],
    ]
    text = table(["path", "rate", "detail"], rows)
    print(text)
    target = "meets" if rate >= 5000 and lost == 0 and batch["errors"] == 0 else "MISSES"
    notes = f"Target: >= 5,000 fixes/s with zero loss through the batch API: {target}."
    print(notes)
    if not args.no_record:
        record("Ingest (bench/ingest.py)", command_line(), text, notes)


if __name__ == "__main__":
    main()
