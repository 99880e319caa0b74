"""OGC API items latency: /ogc/collections/cameras/items?bbox=...&limit=1000, beside its SQL floor.

Usage: .venv/bin/python bench/ogc.py [--n 200] [--base-url URL --token TOKEN] [--no-record]

In-process by default: requests go through django.test.Client (the full middleware stack, bearer
token authentication included, no network or HTTP server) against the dev database. With
--base-url the same requests go over HTTP to a running server (give a --token from
`python manage.py token USERNAME`).

The floor is the same SQL the view runs (page, plus the count when the page is full), timed on
the same connection in the same run: the difference is what Django and the view cost.

In-process, a temporary superuser and its token are created for the run and deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.request
from collections.abc import Callable
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
            returned, _features = cursor.fetchone()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="timed requests per case (after 10 warm-up)")
    parser.add_argument("--base-url", help="a running server, e.g. http://127.0.0.1:8000 (default: in-process)")
    parser.add_argument("--token", help="bearer token for --base-url")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM geo_camera")
        total = cursor.fetchone()[0]
    print(f"geo_camera holds {total} rows")

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
