"""The three modes of the one map in a real browser (Debian's Chromium through Playwright): each
renders every layer of the basemap and the live units, at its real screen size (screenshots kept
in .var/artifacts/); the wall's tiles join into one view and its banners follow the live feed; the
console searches and names what it shows; the phone reports its position and acknowledges a push."""

# ruff: noqa: F811 (the fixtures `server` and `browser` come from tests.browser_support)
from __future__ import annotations

from typing import Any

import pytest

from tests.browser_support import browser, open_mode, rendered, screenshot, server, settle  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db
def test_the_accounts_these_tests_log_in_with_exist() -> None:
    """First in the module, before Playwright runs an event loop in this thread. Also what makes
    pytest-django set up the test database when only browser tests are collected: it prepares the
    databases of the session's django_db tests only, and without one the live server would run
    against the development database."""
    from django.contrib.auth import get_user_model

    from accounts.jurisdiction import Jurisdiction

    users = ("wall", "dongcheng", "donghuamen", "officer1", "commander")
    found = get_user_model().objects.filter(username__in=users, profile__isnull=False)
    assert sorted(u.username for u in found) == sorted(users)
    assert all(Jurisdiction.of(u).level != "none" for u in found)

# Every layer of the basemap and of the units, as the map names them.
# (A district's name is one label point: drawn at city zoom, see CITY_LAYERS.)
BASE_LAYERS = ["district-fill", "district-line", "street-line", "street-label", "gridcell-line",
               "gridcell-label", "community-label", "hotspot", "camera"]
UNIT_LAYERS = ["live-officer"]
CITY_LAYERS = ["district-fill", "district-line", "district-label", "hotspot-cluster", "camera-cluster", "live-cluster"]
# Where every layer has something to draw: beside the first hotspot of 东华门街道, at street zoom.
STREET_VIEW_JS = """async () => {
  const found = await fetch('/api/map/search?q=' + encodeURIComponent('东华门街道重大活动')).then(r => r.json());
  const hotspot = found.results.find(r => r.kind === 'hotspot');
  window.oneMap.jumpTo({center: hotspot.center, zoom: 15.8});
  return hotspot.center;
}"""


def layers_found(page: Any, layers: list[str]) -> dict[str, int]:
    return page.evaluate(
        "(layers) => Object.fromEntries(layers.map(l => [l, window.oneMap.queryRenderedFeatures({layers: [l]}).length]))",
        layers)


def wait_for_every_layer(page: Any, layers: list[str]) -> None:
    try:
        settle(page, "arg.every(l => window.oneMap.queryRenderedFeatures({layers: [l]}).length > 0)", layers)
    except Exception:
        pytest.fail(f"layers without features: {layers_found(page, layers)}")


def test_wall_is_dark_without_controls_and_shows_every_layer(server, browser):
    page, requested = open_mode(browser, server, "wall", "wall", query="?tour=off", width=1920, height=1080)
    page.wait_for_function("() => window.oneMapLive && window.oneMapLive.state === 'live'", timeout=60_000)
    settle(page)
    screenshot(page, "wall-1920x1080")
    # No log-out, no zoom buttons; the map takes no input.
    assert page.query_selector(".maplibregl-ctrl-zoom-in") is None
    assert page.query_selector("button.logout, form[action='/logout/']") is None
    assert page.evaluate("() => window.oneMap.dragPan.isEnabled() || window.oneMap.scrollZoom.isEnabled()") is False
    assert page.evaluate("() => window.oneMap.getPaintProperty('background', 'background-color')") == "#0b1420"
    # City-wide KPIs from the live feed and the summary; and the task panels.
    page.wait_for_function("() => document.querySelector('[data-kpi=cameras-online] .kpi-value').textContent !== '–'")
    live_total = page.evaluate("() => window.oneMapLive.counts()")
    on_duty = int(page.inner_text("[data-kpi=units-on-duty] .kpi-value"))
    stale = int(page.inner_text("[data-kpi=units-stale] .kpi-value"))
    assert (on_duty, stale) == (live_total["fresh"], live_total["stale"]) and on_duty + stale > 1000
    assert int(page.inner_text("[data-kpi=cameras-online] .kpi-value")) > 100_000
    # The task panels (wall_tasks.js): open and overdue tasks from the tasks stream.
    page.wait_for_selector("#wall-task-kpis [data-kpi=tasks-open]")
    # At city zoom the units are clusters, not thousands of dots.
    clusters = rendered(page, "live-cluster", "point_count")
    assert clusters and len(rendered(page, "live-officer")) < 200, len(rendered(page, "live-officer"))
    assert sum(int(c) for c in clusters) > 1000
    assert "北京市" in page.inner_text(".wall-title")
    wait_for_every_layer(page, CITY_LAYERS)
    page.evaluate(STREET_VIEW_JS)
    wait_for_every_layer(page, BASE_LAYERS + UNIT_LAYERS)
    # Fading: the stale fixtures' units are drawn faint, none fully opaque.
    opacities = page.evaluate("() => window.oneMap.queryRenderedFeatures({layers: ['live-officer']}).map(f => f.properties.opacity)")
    assert opacities and max(opacities) < 1
    screenshot(page, "wall-1920x1080-street")
    foreign = [u for u in requested if not u.startswith((server, "blob:", "data:"))]
    assert foreign == []
    page.context.close()


def test_wall_at_4k_scales_the_panels_not_the_map(server, browser):
    sizes = {}
    for width, height in ((1920, 1080), (3840, 2160)):
        page, _ = open_mode(browser, server, "wall", "wall", query="?tour=off", width=width, height=height)
        page.wait_for_function("() => window.oneMapLive && window.oneMapLive.state === 'live'", timeout=60_000)
        settle(page)
        screenshot(page, f"wall-{width}x{height}")
        sizes[width] = page.evaluate("""() => ({
            panel: document.getElementById('wall-panels').getBoundingClientRect().width,
            canvas: window.oneMap.getCanvas().width, zoom: window.oneMap.getZoom()})""")
        page.context.close()
    assert sizes[3840]["panel"] == pytest.approx(2 * sizes[1920]["panel"])
    assert sizes[3840]["canvas"] == 3840  # the map unscaled: one canvas pixel per screen pixel
    assert sizes[3840]["zoom"] == pytest.approx(sizes[1920]["zoom"] + 1, abs=0.05)  # twice the pixels, one zoom more


def test_wall_screens_of_a_tiled_wall_join_into_one_view(server, browser):
    edges = []
    for tile in ("0x0/2x1", "1x0/2x1"):
        page, _ = open_mode(browser, server, "wall", "wall", query=f"?tour=off&tile={tile}", width=960, height=1080)
        edges.append(page.evaluate("""() => {
            const m = window.oneMap, w = m.getCanvas().clientWidth, h = m.getCanvas().clientHeight;
            return {left: m.unproject([0, h / 2]).toArray(), right: m.unproject([w, h / 2]).toArray(), zoom: m.getZoom(),
                    panels: !document.body.classList.contains('wall-no-panels')};
        }"""))
        page.context.close()
    left, right = edges
    assert left["zoom"] == pytest.approx(right["zoom"])
    assert left["right"] == pytest.approx(right["left"], abs=1e-6)  # the seam is the same place
    assert left["panels"] and not right["panels"]  # the KPI panels on the first screen only


def test_wall_banners_follow_the_live_feed(server, browser):
    page, _ = open_mode(browser, server, "wall", "wall", query="?tour=off", width=1920, height=1080)
    page.wait_for_function("() => window.oneMapLive && window.oneMapLive.state === 'live'", timeout=60_000)
    assert page.is_hidden("#banner-lagging") and page.is_hidden("#banner-disconnected")
    # The server's lagging / caught_up messages, as they arrive on the socket.
    deliver = "(type) => window.oneMapLive.socket.onmessage({data: JSON.stringify({type})})"
    page.evaluate(deliver, "lagging")
    assert page.is_visible("#banner-lagging")
    page.evaluate(deliver, "caught_up")
    assert page.is_hidden("#banner-lagging")
    # A dropped connection: the banner shows, and clears itself once the feed resumed.
    stream = page.evaluate("() => { const s = window.oneMapLive.stream; window.oneMapLive.socket.close(); return s; }")
    page.wait_for_selector("#banner-disconnected", state="visible", timeout=10_000)
    page.wait_for_selector("#banner-disconnected", state="hidden", timeout=30_000)
    assert page.evaluate("() => window.oneMapLive.state") == "live"
    assert page.evaluate("() => window.oneMapLive.stream") == stream  # resumed, not a new snapshot
    page.context.close()


def test_console_switches_layers_searches_and_names_units(server, browser):
    page, _ = open_mode(browser, server, "dongcheng", "console", width=1600, height=900)
    page.wait_for_function("() => window.oneMapLive && window.oneMapLive.state === 'live'", timeout=60_000)
    page.wait_for_function("() => document.querySelector('[data-count=cameras]').textContent !== ''")
    screenshot(page, "console-1600x900")
    assert "东城区" in page.inner_text("header .jurisdiction")  # a name, not `district 110101`
    groups = page.eval_on_selector_all("#layer-list input", "boxes => boxes.map(b => b.dataset.group)")
    assert groups == ["districts", "streets", "communities", "gridcells", "hotspots", "cameras", "officers", "vehicles",
                      "tasks"]
    assert page.inner_text("[data-count=districts]") == "1"
    assert int(page.inner_text("[data-count=officers]")) == page.evaluate("() => window.oneMapLive.count('officer')") > 0
    # Search flies to a street; the map ends inside it.
    page.fill("#search", "东华门")
    page.wait_for_selector("#search-results li[data-kind=street]")
    page.click("#search-results li[data-kind=street]")
    settle(page, "Math.abs(window.oneMap.getCenter().lng - 116.397) < 0.01 && Math.abs(window.oneMap.getCenter().lat - 39.915) < 0.01")
    page.evaluate(STREET_VIEW_JS)
    wait_for_every_layer(page, BASE_LAYERS + UNIT_LAYERS)
    screenshot(page, "console-1600x900-street")
    # Keyboard: 8 hides the officers (the 7th group is vehicles... the list order decides).
    page.keyboard.press("7")
    settle(page, "window.oneMap.queryRenderedFeatures({layers: ['live-officer']}).length === 0")
    page.keyboard.press("7")
    settle(page, "window.oneMap.queryRenderedFeatures({layers: ['live-officer']}).length > 0")
    # A click on an officer: a popup with names, not codes.
    point = page.evaluate("""() => {
        const m = window.oneMap, box = m.getCanvas().getBoundingClientRect();
        for (const f of m.queryRenderedFeatures({layers: ['live-officer']})) {
          const p = m.project(f.geometry.coordinates);
          if (p.x < 40 || p.y < 40 || p.x > box.width - 80 || p.y > box.height - 40) continue;
          const near = m.queryRenderedFeatures([[p.x - 8, p.y - 8], [p.x + 8, p.y + 8]], {layers: ['hotspot', 'camera', 'live-officer', 'live-vehicle']});
          if (near.length !== 1) continue;
          return {key: f.properties.key, x: box.left + p.x, y: box.top + p.y};
        }
        return null;
      }""")
    assert point is not None
    page.mouse.click(point["x"], point["y"])
    page.wait_for_selector(".feature-details [data-field=district]")
    unit = page.evaluate("(key) => window.oneMapLive.units.get(key)", point["key"])
    assert page.inner_text(".feature-details h3") == unit["label"]
    assert page.inner_text(".feature-details [data-field=district]") == "东城区"
    street = page.inner_text(".feature-details [data-field=street]")
    assert street.endswith(("街道", "地区", "镇", "乡")) and not street.isdigit()
    page.keyboard.press("Escape")
    assert page.query_selector(".feature-details") is None
    page.context.close()


def test_console_in_english(server, browser):
    page, _ = open_mode(browser, server, "donghuamen", "console")
    page.click(".language button[value=en]")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    page.wait_for_function("() => document.querySelector('#layer-list .name')")
    assert page.inner_text("header .role") == "Street dispatcher"
    assert "Hotspots" in page.inner_text("#layer-list")
    page.click(".language button[value=zh-hans]")
    page.wait_for_function("() => document.documentElement.lang === 'zh-Hans'")
    page.context.close()


@pytest.fixture(scope="module")
def field_officer(django_db_blocker):  # type: ignore[no-untyped-def]
    """officer1's unit, a point of its street to report, and a dispatcher's API token for pushes."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from accounts.models import ApiToken
    from tests.browser_support import in_db_thread

    def read() -> tuple[Any, tuple[float, float], str]:
        officer = get_user_model().objects.get(username="officer1").profile.officer
        assert officer is not None
        with connection.cursor() as cursor:
            # A point of one of its communities: inside its street, and not where test_browser.py puts it.
            cursor.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM geo_community "
                           "WHERE street_id = %s ORDER BY code LIMIT 1) s", [officer.street_id])
            lon, lat = cursor.fetchone()
        _, token = ApiToken.issue(get_user_model().objects.get(username="dongcheng"), name="browser-test")
        return officer, (round(lon, 6), round(lat, 6)), token

    return in_db_thread(django_db_blocker, read)


def test_field_app_on_a_phone_reports_its_position_and_acknowledges_a_push(server, browser, field_officer):
    from tests.browser_support import get_json, post_json

    officer, (lon, lat), token = field_officer
    page, _ = open_mode(browser, server, "officer1", "field", width=390, height=844, is_mobile=True, has_touch=True,
                        device_scale_factor=3, geolocation={"longitude": lon, "latitude": lat, "accuracy": 12},
                        permissions=["geolocation"])
    page.wait_for_function("() => document.body.dataset.link === 'open'", timeout=30_000)
    # Nothing cut off at 390 px: no horizontal scroll, the log-out button inside the screen.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    logout = page.locator("button.logout").bounding_box()
    assert logout is not None and logout["x"] + logout["width"] <= 390
    # The own-position marker is drawn where the officer was last seen.
    settle(page, "window.oneMap.queryRenderedFeatures({layers: ['me']}).length === 1")
    # On duty: the browser's position goes up as a fix and is accepted.
    page.check("#duty-toggle")
    page.wait_for_function("() => window.oneMapField && window.oneMapField.lastFixResult !== null", timeout=30_000)
    assert page.evaluate("() => window.oneMapField.lastFixResult.accepted") == 1
    assert page.evaluate("() => window.oneMapField.position") == [lon, lat]
    # A dispatcher pushes; the phone shows it at once and acknowledges it.
    push = post_json(f"{server}/api/pushes", {"device_id": officer.device_id, "kind": "map_push",
                                              "payload": {"title": "请到东华门巡查", "detail": "浏览器测试"}}, token)
    card = page.wait_for_selector(f"[data-push='{push['id']}']", timeout=30_000)
    assert card is not None and "请到东华门巡查" in card.inner_text()
    screenshot(page, "field-390x844-push")
    page.click(f"[data-push='{push['id']}'] .ack")
    page.wait_for_selector(f"[data-push='{push['id']}'].acked", timeout=30_000)
    assert get_json(f"{server}/api/pushes/{push['id']}", token)["acked_at"] is not None  # recorded by the server
    # The app shell is kept by the service worker: offline, the page still opens.
    # Bounded: a service worker that cannot register (a policy refusing its script) never gets ready.
    assert page.evaluate("() => Promise.race([navigator.serviceWorker.ready.then(() => true),"
                         " new Promise(resolve => setTimeout(() => resolve(false), 30000))])")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("#duty-toggle", timeout=30_000)
    assert page.inner_text(".field-who strong") != ""
    page.context.set_offline(False)
    page.context.close()
