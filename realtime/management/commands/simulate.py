"""python manage.py simulate — officers and vehicles on patrol, reporting through the real HTTP
ingest path (POST /api/positions with a gateway token), so screens show live movement.

Each unit patrols a loop of points drawn inside its street (or its district) and reports every
--interval seconds; the fixes of one tick go out in batches of --batch."""

from __future__ import annotations

import json
import random
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from realtime.devices import issue_device_token
from realtime.patrol import Patrol, make_patrol

# Waypoints per unit, drawn inside the street polygon (the district's when the unit has no street).
POINTS_SQL = """
SELECT u.device_id, ST_X(p.geom), ST_Y(p.geom)
FROM {table} u
JOIN geo_district d ON d.code = u.district_id
LEFT JOIN geo_street s ON s.code = u.street_id
CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(COALESCE(s.geom, d.geom), 4, (u.id %% 100000)::int)) AS p
WHERE u.id %% %s = 0
ORDER BY u.id
"""
TABLES = {"officer": "geo_officer", "vehicle": "geo_vehicle"}


class Command(BaseCommand):
    help = "Move officers and vehicles along patrol loops and send their fixes to a running server."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default %(default)s)")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between two fixes of a unit")
        parser.add_argument("--every", type=int, default=1, help="simulate every Nth unit only (1 = all)")
        parser.add_argument("--batch", type=int, default=1000, help="fixes per request")
        parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = never)")
        parser.add_argument("--wait", type=float, default=30, help="seconds to wait for the server to come up")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(options["seed"])
        patrols = self.load_patrols(options["every"], rng)
        if not patrols:
            raise CommandError("no officers or vehicles to move: load the fixtures first (make fixtures)")
        token = issue_device_token(f"simulator-{datetime.now(UTC):%Y%m%d%H%M%S}", gateway=True)
        url = options["url"].rstrip("/") + "/api/positions"
        self.wait_for_server(url, options["wait"])
        self.stdout.write(f"simulate: {len(patrols)} units, a fix each {options['interval']} s, to {url}")
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        started = last = time.monotonic()
        sent = rejected = 0
        try:
            while not stopping and not (options["duration"] and time.monotonic() - started > options["duration"]):
                now = time.monotonic()
                at = datetime.now(UTC).isoformat()
                for patrol in patrols:
                    patrol.advance(now - last, rng)
                last = now
                fixes = [p.fix(at, rng) for p in patrols]
                for i in range(0, len(fixes), options["batch"]):
                    result = self.post(url, token, fixes[i:i + options["batch"]])
                    sent += result.get("accepted", 0)
                    rejected += result.get("rejected", 0)
                if options["verbosity"] >= 2:
                    self.stdout.write(f"simulate: {sent} accepted, {rejected} rejected")
                time.sleep(max(0.0, options["interval"] - (time.monotonic() - now)))  # the tick's pace
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"simulate: stopped; {sent} fixes accepted, {rejected} rejected")

    def load_patrols(self, every: int, rng: random.Random) -> list[Patrol]:
        points: dict[tuple[str, str], list[tuple[float, float]]] = {}
        with connection.cursor() as cursor:
            for kind, table in TABLES.items():
                cursor.execute(POINTS_SQL.format(table=table), [max(1, every)])
                for device_id, x, y in cursor.fetchall():
                    points.setdefault((kind, device_id), []).append((x, y))
        return [make_patrol(device_id, kind, pts, rng) for (kind, device_id), pts in points.items() if len(pts) >= 2]

    def wait_for_server(self, url: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        root = urllib.parse.urljoin(url, "/")  # the login page: a GET of the ingest URL logs a 405
        while True:
            try:
                urllib.request.urlopen(root, timeout=2)  # noqa: S310 (our own server URL)
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer: it is up
            except OSError as error:
                if time.monotonic() > deadline:
                    raise CommandError(f"no server at {url}: {error}") from None
                time.sleep(0.5)  # polling a server that is still starting

    def post(self, url: str, token: str, fixes: list[dict[str, Any]]) -> dict[str, Any]:
        request = urllib.request.Request(url, data=json.dumps(fixes).encode(), method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            self.stderr.write(f"simulate: {len(fixes)} fixes not sent ({error}); continuing")
            return {}
