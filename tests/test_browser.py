"""The one map in a real browser (Debian's Chromium driven by Playwright): a dispatcher logs in,
the map draws the districts from our own vector tiles with local-font labels, and nothing is
fetched from anywhere but our server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.live_server import running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: no background calls to Google's services (they would be refused).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]

# No django_db mark: the tests only talk to the server process, and Playwright runs an event loop
# in this thread, where Django refuses database calls.
pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock(), running_server() as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def logged_in_page(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "onemap-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    # Wait for MapLibre itself: the style and every visible tile loaded.
    page.wait_for_function("() => window.oneMap && window.oneMap.loaded() && window.oneMap.areTilesLoaded()",
                           timeout=60_000)
    return page, requested


def rendered(page, layer: str, prop: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "([layer, prop]) => window.oneMap.queryRenderedFeatures({layers: [layer]}).map(f => String(f.properties[prop]))",
        [layer, prop])


def test_city_commander_sees_all_districts_drawn_from_our_tiles(server, browser):
    page, requested = logged_in_page(browser, server, "commander")
    lines = set(rendered(page, "district-line", "code"))
    labels = set(rendered(page, "district-label", "name"))
    assert len(lines) == 16, lines
    assert {"东城区", "延庆区"} <= labels
    # Everything came from our own server (blob: URLs are MapLibre's workers, made in the page).
    foreign = [u for u in requested if not (u.startswith(server) or u.startswith("blob:") or u.startswith("data:"))]
    assert foreign == []
    assert any("/tiles/" in u and u.endswith(".mvt") or ".mvt?" in u for u in requested)
    page.close()


def test_district_dispatcher_opens_on_dongcheng(server, browser):
    page, _ = logged_in_page(browser, server, "dongcheng")
    centre = page.evaluate("() => window.oneMap.getCenter().toArray()")
    assert 116.38 < centre[0] < 116.45 and 39.86 < centre[1] < 39.97  # Dongcheng, not the city centre view
    assert "东城区" in page.inner_text("header")
    page.close()
