"""Bad logins against tile latency (issue 14: 32 concurrent bad logins slowed tiles to 8.8 s).

    DATABASE_URL=... .venv/bin/python bench/logins.py [--seconds 20] [--logins 32] [--no-record]

Starts OneMap (`make serve`'s command, --workers 2) twice on a free port: with the hashing gate as
configured (ONEMAP_LOGIN_HASH_SLOTS=1 per worker) and with the gate opened wide (64 slots: every
login hashes at once, as before the gate). Each run: `--logins` threads post wrong passwords for
unknown usernames (Django hashes those too) as fast as they are answered, while one client
fetches a signed tile (?t=, the fast path, cached after its first answer) in a loop. django-axes'
lockout is raised out of the way (ONEMAP_LOGIN_FAILURES) to measure the gate alone, and its
records are reset afterwards (`manage.py axes_reset`). Reports tile latency and login answers."""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from accounts.jurisdiction import Jurisdiction  # noqa: E402
from bench.common import ROOT, command_line, percentiles, record, table  # noqa: E402
from config.http import server_command  # noqa: E402
from tests.live_server import free_port  # noqa: E402
from tiles.auth import issue_token  # noqa: E402


def wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=2)  # noqa: S310 (our own local server)
            return
        except OSError:
            time.sleep(0.2)  # polling while it starts
    raise TimeoutError(base)


def bad_logins(base: str, stop: threading.Event, answers: Counter[int], n: int) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = opener.open(f"{base}/login/", timeout=60).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert csrf is not None
    i = 0
    while not stop.is_set():
        i += 1
        data = urllib.parse.urlencode({"username": f"guess-{n}-{i}", "password": "wrong",
                                       "csrfmiddlewaretoken": csrf.group(1)}).encode()
        request = urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"})
        try:
            with opener.open(request, timeout=120) as response:
                answers[response.status] += 1
        except urllib.error.HTTPError as error:
            answers[error.code] += 1


def run(label: str, slots: int, seconds: float, logins: int, tile_path: str) -> list[object]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ONEMAP_LOGIN_HASH_SLOTS": str(slots), "ONEMAP_LOGIN_HASH_QUEUE": str(max(8, slots)),
           "ONEMAP_LOGIN_FAILURES": "100000000"}
    server = subprocess.Popen(server_command(sys.executable, "127.0.0.1", port, "--workers", "2",
                                             "--log-level", "warning"), cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(base, server)
        urllib.request.urlopen(base + tile_path, timeout=30).read()  # noqa: S310  (warm the tile cache)
        stop, answers = threading.Event(), Counter[int]()
        threads = [threading.Thread(target=bad_logins, args=(base, stop, answers, n)) for n in range(logins)]
        for thread in threads:
            thread.start()
        samples: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            urllib.request.urlopen(base + tile_path, timeout=120).read()  # noqa: S310
            samples.append((time.perf_counter() - started) * 1000)
        stop.set()
        for thread in threads:
            thread.join(180)
    finally:
        server.terminate()
        server.wait(30)
    p = percentiles(samples)
    return [label, len(samples), f"{p['p50']:.0f}", f"{p['p99']:.0f}", f"{p['max']:.0f}",
            ", ".join(f"{status}: {count}" for status, count in sorted(answers.items()))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--logins", type=int, default=32)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    commander = get_user_model().objects.get(username="commander")
    tile_path = f"/tiles/districts/10/843/388.mvt?t={issue_token(commander.pk, Jurisdiction('city'))}"
    rows = []
    try:
        for label, slots in (("gate: 1 hash per worker", 1), ("gate open: 64 per worker", 64)):
            rows.append(run(label, slots, args.seconds, args.logins, tile_path))
    finally:
        subprocess.run([sys.executable, "manage.py", "axes_reset"], cwd=ROOT, check=False, capture_output=True)
    text = table(["run", "tiles", "tile p50 ms", "tile p99 ms", "tile max ms", "login answers"], rows)
    print(text)
    if not args.no_record:
        record("Bad logins vs tiles (bench/logins.py)", command_line(), text,
               f"{args.logins} threads posting bad logins for {args.seconds:.0f} s, 2 workers; one client fetching "
               "a signed, cached tile in a loop. 503 = refused by the gate (Retry-After), 200 = the form again.")


if __name__ == "__main__":
    main()
