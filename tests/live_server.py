"""A real OneMap server process (uvicorn on config.asgi) against the test database, for tests
that need one from outside: a browser, GDAL, a second process. pytest-django's live_server is not
used because its transactional flush would wipe the session's fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import quote

from django.db import connection

from config.http import server_command

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_database_url() -> str:
    """DATABASE_URL of the database this test session uses (socket or TCP, with password).
    Refused before pytest-django has set the test database up: the connection would still name
    the development database, and a server started on it would write test rows there (it once
    left test profiles that broke `make demo`'s fixture reload)."""
    db = connection.settings_dict
    if db["NAME"] != db["TEST"]["NAME"]:
        raise RuntimeError(f"a test server runs on the test database {db['TEST']['NAME']!r}, not on {db['NAME']!r}: "
                           "request the django_db_setup fixture")
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    host = db["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{auth}@/{db['NAME']}?host={quote(host)}&port={db['PORT'] or 5432}"
    return f"postgresql://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def running_server(extra_env: dict[str, str] | None = None, timeout: float = 60.0, log_level: str = "warning",
                   options: tuple[str, ...] = (), output: IO[bytes] | None = None,
                   started: list[subprocess.Popen[bytes]] | None = None) -> Iterator[str]:
    """Start a server, wait until it answers (polling, no fixed sleep), yield its base URL.
    `options` go to uvicorn; `output`: a file for the server's stdout and stderr (its log), else
    the test's; `started` receives the server's process (for tests that signal it)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": session_database_url(), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    server = subprocess.Popen(
        server_command(sys.executable, "127.0.0.1", port, "--log-level", log_level, *options), cwd=ROOT, env=env,
        stdout=output, stderr=output)
    if started is not None:
        started.append(server)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert server.poll() is None, "the server exited while starting"
            try:
                urllib.request.urlopen(f"{base}/login/", timeout=2)  # noqa: S310 (our own local server)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server on port {port} did not answer in {timeout} s") from None
                time.sleep(0.1)  # polling interval, not synchronisation
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
