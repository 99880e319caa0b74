"""OGC API items latency: /ogc/collections/cameras/items?bbox=...&limit=1000, beside its SQL floor;
and (--download) the full download of the cameras with ogr2ogr, GDAL's defaults beside the tuned
`-oo PAGE_SIZE=10000`.

Usage: .venv/bin/python bench/ogc.py [--n 200] [--base-url URL --token TOKEN] [--no-record]
       .venv/bin/python bench/ogc.py --download [--base-url URL --token TOKEN] [--no-record]
       .venv/bin/python bench/ogc.py --flood 64 [--no-record]

In-process by default: requests go through django.test.Client (the full middleware stack, bearer
token authentication included, no network or HTTP server) against the dev database. With
--base-url the same requests go over HTTP to a running server (give a --token from
`python manage.py token USERNAME`).

The floor is the same SQL the view runs (page, plus the count when the page is full), timed on
the same connection in the same run: the difference is what Django and the view cost.

In-process, a temporary superuser and its token are created for the run and deleted afterwards.

--download runs `ogr2ogr -f GPKG out.gpkg OAPIF:<server>/ogc cameras` twice, as a GIS engineer
would: with GDAL's defaults (GDAL 3.6 asks for limit=10 and follows the `next` links; GDAL >= 3.8
reads its page size from the API definition), and with -oo PAGE_SIZE=10000. Without --base-url the
bench starts its own server (OneMap's uvicorn command, one worker) on a free port against the
database of the settings, and stops it afterwards. The output's feature count is checked.

--flood N (issue 14: 64 concurrent `cameras/items?limit=10000` gave 500s, a 1-row request took
9.8 s and the worker went from 215 to 1,440 MiB): N users each ask for a 10,000-camera page at
once, on a server the bench starts, while one more user asks for 1-row pages one after another.
It reports the statuses, the 1-row latencies and the server's peak RSS (sampled from /proc).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.jurisdiction import Jurisdiction  # noqa: E402
from accounts.models import ApiToken  # noqa: E402
from bench.common import command_line, percentiles, record, table  # noqa: E402
from config.http import server_command  # noqa: E402
from geo.ogc import registry  # noqa: E402
from geo.ogc.params import parse_items_query  # noqa: E402
from geo.ogc.query import count_sql, page_sql  # noqa: E402

BENCH_USER = "bench-ogc"
# Around Wangfujing in Dongcheng (116.41 E, 39.915 N): 1 km x 1 km (0.0117 deg of longitude and
# 0.009 deg of latitude at 40 N), and a wider box that fills a 1000-feature page.
BOXES = {
    "1 km2 Dongcheng": "116.40415,39.9105,116.41585,39.9195",
    "~12 km2 Dongcheng": "116.39,39.90,116.43,39.93",
}
LIMIT = 1000

T = TypeVar("T")


def timed(fn: Callable[[], T], n: int, warmup: int = 10) -> tuple[list[float], T]:
    if warmup + n < 1:
        raise ValueError("timed needs at least one call (warmup + n >= 1)")
    for _ in range(warmup):
        result = fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples, result


def sql_floor(query: str) -> Callable[[], int]:
    """The view's SQL for this query string, run on a plain cursor; returns features returned."""
    collection = registry.get("cameras")
    assert collection is not None
    items = parse_items_query(collection, QueryDict(query))
    city = Jurisdiction("city")
    page, count = page_sql(collection, items, city), count_sql(collection, items, city)

    def run() -> int:
        with connection.cursor() as cursor:
            cursor.execute(*page)
            returned, _features, _last_key = cursor.fetchone()
            if returned >= items.limit:  # the view counts only when the page is full
                cursor.execute(*count)
                cursor.fetchone()
        return returned

    return run


def number_returned(body: bytes) -> int:
    # The count sits in the small head the view writes before the features: no full parse needed.
    match = re.search(rb'"numberReturned": (\d+)', body[:4096])
    assert match, body[:300]
    return int(match[1])


def in_process_get(token: str) -> Callable[[str], Callable[[], tuple[int, int]]]:
    client = Client()

    def for_url(url: str) -> Callable[[], tuple[int, int]]:
        def get() -> tuple[int, int]:
            response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 200, response.content[:300]
            return len(response.content), number_returned(response.content)

        return get

    return for_url


def http_get(base_url: str, token: str) -> Callable[[str], Callable[[], tuple[int, int]]]:
    def for_url(url: str) -> Callable[[], tuple[int, int]]:
        request = urllib.request.Request(base_url.rstrip("/") + url, headers={"Authorization": f"Bearer {token}"})

        def get() -> tuple[int, int]:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (a URL the user gave)
                body = response.read()
            return len(body), number_returned(body)

        return get

    return for_url


@contextmanager
def own_server() -> Iterator[tuple[str, int | None]]:
    """OneMap's server on a free port, over the settings' database; yields its base URL and pid."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(server_command(sys.executable, "127.0.0.1", port, "--log-level", "warning"),
                              cwd=Path(__file__).resolve().parent.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise SystemExit("the server exited while starting")
            try:
                urllib.request.urlopen(f"{base}/login/", timeout=2)  # noqa: S310 (our own server)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the server on port {port} did not answer in 60 s") from None
                time.sleep(0.1)  # polling interval while it starts
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def ogr2ogr_download(base_url: str, token: str, options: list[str], out_dir: str) -> tuple[float, int, int]:
    """Seconds, features written and HTTP requests GDAL made for the whole cameras collection."""
    out = Path(out_dir) / f"cameras{len(options)}.gpkg"
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}", "CPL_DEBUG": "ON"}
    t0 = time.perf_counter()
    result = subprocess.run(["ogr2ogr", "-f", "GPKG", *options, str(out), f"OAPIF:{base_url.rstrip('/')}/ogc",
                             "cameras"], env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"ogr2ogr failed: {result.stderr[-500:]}")
    requests = result.stderr.count("HTTP: Fetch(") + result.stderr.count("HTTP: Fetching")
    info = subprocess.run(["ogrinfo", "-ro", "-so", str(out), "cameras"], capture_output=True, text=True, timeout=60)
    match = re.search(r"Feature Count: (\d+)", info.stdout)
    return seconds, int(match[1]) if match else -1, requests


def local_floor(out_dir: str) -> float:
    """GDAL's own share: the cameras written above, as one GeoJSON file, converted to GeoPackage
    again (parse and write, no HTTP, no server)."""
    geojson, gpkg = Path(out_dir) / "cameras.geojson", Path(out_dir) / "floor.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(geojson), str(Path(out_dir) / "cameras0.gpkg")], check=True,
                   capture_output=True, timeout=600)
    t0 = time.perf_counter()
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(gpkg), str(geojson)], check=True, capture_output=True, timeout=600)
    return time.perf_counter() - t0


def download(args: argparse.Namespace, total: int) -> None:
    if shutil.which("ogr2ogr") is None:
        raise SystemExit("ogr2ogr is not installed (gdal-bin)")
    version = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()
    user, server = None, ""
    if args.base_url:
        if not args.token:
            raise SystemExit("--base-url needs --token (python manage.py token USERNAME)")
        token = args.token
    else:
        user, _ = get_user_model().objects.get_or_create(username=BENCH_USER, defaults={"is_superuser": True})
        _, token = ApiToken.issue(user, name="bench")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as out_dir:
            with (own_server() if not args.base_url else _given(args.base_url)) as (base, _pid):
                server = base
                for label, options in (("GDAL defaults", []), ("-oo PAGE_SIZE=10000", ["-oo", "PAGE_SIZE=10000"])):
                    seconds, written, requests = ogr2ogr_download(base, token, options, out_dir)
                    if written != total:
                        raise SystemExit(f"{label}: {written} cameras written, {total} in the database")
                    rows.append([label, f"{written:,}", requests, f"{seconds:.1f}", f"{written / seconds:,.0f}"])
            rows.append(["floor: the same features from a local GeoJSON file", f"{total:,}", 0,
                         f"{local_floor(out_dir):.1f}", ""])
    finally:
        if user is not None:
            user.delete()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"`ogr2ogr -f GPKG cameras.gpkg OAPIF:{server}/ogc cameras`, {version}; geo_camera = {total:,} rows; "
            f"load average at the end {load}; "
            f"{'a server this bench started' if not args.base_url else 'the given server'} (one uvicorn worker).\n\n"
            + table(["options", "features", "HTTP requests", "seconds", "features/s"], rows))
    print(text)
    if not args.no_record:
        record("OGC API: ogr2ogr download of all cameras (bench/ogc.py --download)", command_line(), text,
               notes="Target: GDAL's defaults <= 20 s (issue 13: 55 min with OFFSET paging at limit=10). GDAL 3.6 "
                     "does not read the API definition and starts at limit=10; the `next` links continue by id "
                     "(cursor) and double the page up to OGC_NEXT_LIMIT_MAX (1,000). HTTP requests counted from "
                     "GDAL's debug log (collections, schema probe and pages).")


def flood(args: argparse.Namespace) -> None:
    import threading
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    users = [get_user_model().objects.get_or_create(username=f"{BENCH_USER}-{n}")[0] for n in range(args.flood + 1)]
    tokens = [ApiToken.issue(user, name="bench")[1] for user in users]
    statuses: Counter[str] = Counter()
    light_ms: list[float] = []
    peak_kib = 0
    try:
        with own_server() as (base, pid):
            done = threading.Event()

            def fetch(token: str, query: str) -> tuple[int, float]:
                request = urllib.request.Request(f"{base}/ogc/collections/cameras/items?{query}",
                                                 headers={"Authorization": f"Bearer {token}"})
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (our server)
                        response.read()
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                    if status in (429, 503) and not error.headers.get("Retry-After"):
                        status = -status  # a refusal without Retry-After counts as a failure
                return status, (time.perf_counter() - t0) * 1000

            def light() -> None:
                while not done.is_set():
                    status, ms = fetch(tokens[-1], "limit=1")
                    statuses[f"1-row {status}"] += 1
                    light_ms.append(ms)

            def rss() -> None:
                nonlocal peak_kib
                while not done.wait(0.05):  # sampling interval, not synchronisation
                    text = Path(f"/proc/{pid}/status").read_text()
                    peak_kib = max(peak_kib, int(re.search(r"VmRSS:\s+(\d+)", text)[1]))  # type: ignore[index]

            start_kib = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())[1])  # type: ignore[index]
            watchers = [threading.Thread(target=light), threading.Thread(target=rss)]
            for thread in watchers:
                thread.start()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.flood) as pool:
                for status, _ in pool.map(lambda token: fetch(token, "limit=10000"), tokens[:-1]):
                    statuses[f"10,000-row {status}"] += 1
            seconds = time.perf_counter() - t0
            done.set()
            for thread in watchers:
                thread.join()
    finally:
        for user in users:
            user.delete()
    one_row = percentiles(light_ms)
    text = (f"{args.flood} users at once, each GET cameras/items?limit=10000, on a server this bench started (one "
            f"uvicorn worker, defaults: 4 heavy pages per process, 2 per user); meanwhile one more user asks for "
            f"limit=1 pages one after another. Load average at the end "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}.\n\n"
            + table(["answers", "flood s", "1-row p50 ms", "1-row p99 ms", "1-row max ms", "RSS MiB start -> peak"],
                    [[", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())), f"{seconds:.1f}",
                      f"{one_row['p50']:.0f}", f"{one_row['p99']:.0f}", f"{max(light_ms):.0f}",
                      f"{start_kib / 1024:.0f} -> {peak_kib / 1024:.0f}"]]))
    print(text)
    if not args.no_record:
        record("OGC API: concurrent large pages (bench/ogc.py --flood)", command_line(), text,
               notes="Issue 14 measured 500s, a 9.8 s 1-row request and 215 -> 1,440 MiB for 64 such requests "
                     "before the limits and the streaming. Target: no 500, every refusal a 429/503 with "
                     "Retry-After, 1-row requests unaffected.")


@contextmanager
def _given(base_url: str) -> Iterator[tuple[str, int | None]]:
    yield base_url, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="timed requests per case (after 10 warm-up)")
    parser.add_argument("--base-url", help="a running server, e.g. http://127.0.0.1:8000 (default: in-process)")
    parser.add_argument("--token", help="bearer token for --base-url")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--download", action="store_true", help="time ogr2ogr downloading all cameras instead")
    parser.add_argument("--flood", type=int, default=0, help="N users asking for 10,000-camera pages at once")
    args = parser.parse_args()

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM geo_camera")
        total = cursor.fetchone()[0]
    print(f"geo_camera holds {total} rows")
    if args.download:
        download(args, total)
        return
    if args.flood:
        flood(args)
        return

    user = None
    if args.base_url:
        if not args.token:
            parser.error("--base-url needs --token (python manage.py token USERNAME)")
        getter, mode = http_get(args.base_url, args.token), f"HTTP to {args.base_url}"
    else:
        user, _ = get_user_model().objects.get_or_create(username=BENCH_USER, defaults={"is_superuser": True})
        _, raw = ApiToken.issue(user, name="bench")
        getter, mode = in_process_get(raw), "in-process django.test.Client"

    rows = []
    try:
        for label, bbox in BOXES.items():
            query = f"bbox={bbox}&limit={LIMIT}"
            api, (size, features) = timed(getter(f"/ogc/collections/cameras/items?{query}"), args.n)
            floor, returned = timed(sql_floor(query), args.n)
            assert returned == features, (returned, features)
            a, f = percentiles(api), percentiles(floor)
            rows.append([label, features, f"{size / 1024:.0f}", f"{a['p50']:.1f}", f"{a['p90']:.1f}",
                         f"{a['p99']:.1f}", f"{f['p50']:.1f}", f"{f['p90']:.1f}", f"{f['p99']:.1f}"])
    finally:
        if user is not None:
            user.delete()

    text = (f"cameras items, limit={LIMIT}, {args.n} requests per case, {mode}; geo_camera = {total} rows. "
            "Times in ms.\n\n" + table(
                ["bbox", "features", "KiB", "API p50", "API p90", "API p99", "SQL p50", "SQL p90", "SQL p99"], rows))
    print(text)
    if not args.no_record:
        record("OGC API items (bench/ogc.py)", command_line(), text,
               notes="SQL = the view's own page query (+ count when the page is full) on a plain cursor: the "
                     "database floor. API = the whole request through Django (auth by bearer token, "
                     "parameter checks, the same SQL, the response assembled without parsing features).")


if __name__ == "__main__":
    main()
