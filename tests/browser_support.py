"""Shared by the browser tests: a live OneMap server on the test database, Debian's Chromium
driven by Playwright, logging in as a demo account, and screenshots kept as test artifacts
(.var/artifacts/, gitignored with .var)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.live_server import ROOT, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: no background calls to Google's services (they would be refused).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = ROOT / ".var" / "artifacts"
DEMO_PASSWORD = "onemap-demo"
# MapLibre itself: the style and every visible tile loaded.
MAP_READY = "() => window.oneMap && window.oneMap.loaded() && window.oneMap.areTilesLoaded()"
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock(), running_server() as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def in_db_thread(django_db_blocker: Any, work: Callable[[], T]) -> T:
    """Database work from a browser test: in a thread of its own, because Playwright runs an event
    loop in this one, where Django refuses database calls."""
    from django.db import connection

    def run() -> T:
        try:
            return work()
        finally:
            connection.close()

    with django_db_blocker.unblock(), ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def log_in(page: Any, base: str, username: str, path: str = "") -> None:
    page.goto(f"{base}/login/?next=/{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")


def open_mode(browser: Any, base: str, username: str, mode: str, *, query: str = "",
              width: int = 1280, height: int = 800, **context_options: Any) -> tuple[Any, list[str]]:
    """A fresh context logged in as `username`, on `/{mode}{query}` with the map ready."""
    context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in(page, base, username)
    page.wait_for_url(f"{base}/{mode}")  # `/` sent the role to its mode
    if query:
        page.goto(f"{base}/{mode}{query}")
    page.wait_for_function(MAP_READY, timeout=60_000)
    return page, requested


def settle(page: Any, condition: str = "true", arg: Any = None) -> None:
    """Wait until the map drew everything in view and `condition` holds."""
    page.wait_for_function(f"(arg) => ({MAP_READY})() && ({condition})", arg=arg, timeout=60_000)


def rendered(page: Any, layer: str, prop: str | None = None) -> list[Any]:
    return page.evaluate(
        "([layer, prop]) => window.oneMap.queryRenderedFeatures({layers: [layer]})"
        ".map(f => prop ? String(f.properties[prop]) : f.id)", [layer, prop])


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def post_json(url: str, body: Any, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our own local server)
        return json.loads(response.read())  # type: ignore[no-any-return]


def get_json(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our own local server)
        return json.loads(response.read())  # type: ignore[no-any-return]
