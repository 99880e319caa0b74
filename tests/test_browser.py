"""The one map in a real browser (Debian's Chromium driven by Playwright): a dispatcher logs in,
the console draws the districts from our own vector tiles with local-font labels, and nothing is
fetched from anywhere but our server."""

# ruff: noqa: F811 (the fixtures `server` and `browser` come from tests.browser_support)
from __future__ import annotations

from typing import Any

import pytest

from tests.browser_support import browser, open_mode, post_json, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db
def test_the_accounts_these_tests_log_in_with_exist() -> None:
    """First in the module, before Playwright runs an event loop in this thread. Also what makes
    pytest-django set up the test database when only browser tests are collected: it prepares the
    databases of the session's django_db tests only, and without one the live server would run
    against the development database."""
    from django.contrib.auth import get_user_model

    from accounts.jurisdiction import Jurisdiction

    users = ("commander", "dongcheng")
    found = get_user_model().objects.filter(username__in=users, profile__isnull=False)
    assert sorted(u.username for u in found) == sorted(users)
    assert all(Jurisdiction.of(u).level != "none" for u in found)


def logged_in_page(browser: Any, base: str, username: str):  # type: ignore[no-untyped-def]
    """A dispatcher's console (`/` sends dispatchers there), the map ready."""
    return open_mode(browser, base, username, "console")


def rendered(page, layer: str, prop: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "([layer, prop]) => window.oneMap.queryRenderedFeatures({layers: [layer]}).map(f => String(f.properties[prop]))",
        [layer, prop])


def test_city_commander_sees_all_districts_drawn_from_our_tiles(server, browser):
    page, requested = logged_in_page(browser, server, "commander")
    lines = set(rendered(page, "district-line", "code"))
    labels = set(rendered(page, "district-label", "name"))
    assert len(lines) == 16, ",".join(sorted(lines))
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


@pytest.fixture(scope="module")
def reporting_officer(django_db_blocker):  # type: ignore[no-untyped-def]
    """A Dongcheng officer's device, and a gateway token that may report for it."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from geo.models import Officer
    from realtime.devices import issue_device_token

    def read() -> tuple[Officer, str, tuple[float, float]]:
        try:
            officer = Officer.objects.filter(district_id="110101", position_at__isnull=False).order_by("id").first()
            assert officer is not None
            # Where the fix will put it: a point of its own street, so the data stays as the
            # fixtures have it (every unit inside its street) for the tests that run after.
            with connection.cursor() as cursor:
                cursor.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM geo_street "
                               "WHERE code = %s) s", [officer.street_id])
                lon, lat = cursor.fetchone()
            return officer, issue_device_token("browser-test-gateway", gateway=True), (round(lon, 6), round(lat, 6))
        finally:
            connection.close()

    # In a thread of its own: Playwright runs an event loop in this one, where Django refuses
    # database calls.
    with django_db_blocker.unblock(), ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def post_fix(base: str, token: str, device_id: str, lon: float, lat: float) -> None:
    from datetime import UTC, datetime

    fix = {"device_id": device_id, "time": datetime.now(UTC).isoformat(), "lon": lon, "lat": lat}
    assert post_json(f"{base}/api/positions", [fix], token)["accepted"] == 1


def test_units_move_live_on_the_dispatch_screen(server, browser, reporting_officer):
    officer, gateway, (lon, lat) = reporting_officer
    key = f"officer:{officer.id}"
    page, _ = logged_in_page(browser, server, "dongcheng")
    page.wait_for_function("() => window.oneMapLive && window.oneMapLive.state === 'live'", timeout=60_000)
    # The snapshot holds Dongcheng's units only (the district dispatcher's jurisdiction).
    districts = page.evaluate("() => [...new Set([...window.oneMapLive.units.values()].map(u => u.district))]")
    assert districts == ["110101"]
    assert page.evaluate("(key) => window.oneMapLive.units.has(key)", key)
    # A fix through the real ingest path moves the officer on the screen: in the units and in
    # what MapLibre drew.
    assert (lon, lat) != (officer.geom.x, officer.geom.y)  # so the officer does move
    # At street zoom, where units are drawn one by one (below it they are clustered).
    page.evaluate("([lon, lat]) => window.oneMap.jumpTo({center: [lon, lat], zoom: 15})", [lon, lat])
    post_fix(server, gateway, officer.device_id, lon, lat)
    page.wait_for_function(
        """([key, lon]) => {
             const unit = window.oneMapLive.units.get(key);
             if (!unit || unit.lon !== lon || unit.stale) return false;
             return window.oneMap.queryRenderedFeatures({layers: ['live-officer']})
               .some(f => f.properties.key === key && Math.abs(f.geometry.coordinates[0] - lon) < 1e-4);
           }""", arg=[key, lon], timeout=30_000)
    assert "实时" in page.inner_text("#live-status")
    assert page.evaluate("() => window.oneMap.getLayoutProperty('officer', 'visibility')") == "none"
    page.close()


def test_a_click_on_a_camera_shows_its_record_from_the_ogc_api(server, browser):
    """Camera tiles carry only what the map draws (status, source); a click brings the record."""
    page, _ = logged_in_page(browser, server, "dongcheng")
    page.evaluate("() => window.oneMap.jumpTo({center: [116.41, 39.915], zoom: 15})")
    page.wait_for_function("() => window.oneMap && window.oneMap.loaded() && window.oneMap.areTilesLoaded() && "
                           "window.oneMap.queryRenderedFeatures({layers: ['camera']}).length > 0", timeout=60_000)
    # A camera with no hotspot drawn under the pointer, in page coordinates.
    camera = page.evaluate("""() => {
        const map = window.oneMap, box = map.getCanvas().getBoundingClientRect();
        for (const f of map.queryRenderedFeatures({layers: ['camera']})) {
          const p = map.project(f.geometry.coordinates);
          const near = [[p.x - 8, p.y - 8], [p.x + 8, p.y + 8]];
          if (p.x < 40 || p.y < 40 || p.x > box.width - 80 || p.y > box.height - 40) continue;
          if (map.queryRenderedFeatures(near, {layers: ['hotspot', 'camera']}).length !== 1) continue;
          return {id: f.id, properties: f.properties, x: box.left + p.x, y: box.top + p.y};
        }
        return null;
      }""")
    assert camera is not None
    assert set(camera["properties"]) == {"status", "source"}
    record = page.evaluate("(id) => fetch(`/ogc/collections/cameras/items/${id}`).then(r => r.json())", camera["id"])
    page.mouse.click(camera["x"], camera["y"])
    code = page.wait_for_selector(".feature-details [data-field=code]", timeout=30_000)
    assert code is not None and code.inner_text() == record["properties"]["code"]
    assert page.inner_text(".feature-details h3") == record["properties"]["name"]
    status = page.query_selector(".feature-details [data-field=status]")
    assert status is not None and status.get_attribute("data-value") == camera["properties"]["status"]
    assert status.inner_text() in {"在线 online", "离线 offline", "故障 fault"}  # the model's label, not the code
    page.close()


CSP_WATCH = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"""


def test_the_map_and_the_admin_map_widget_run_under_the_content_security_policy(server, browser):
    """config/headers.py's policy (no inline script or style, workers from blob:) breaks nothing:
    the map draws and goes live, the admin's map widget draws the districts; no violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(CSP_WATCH)
    console: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{server}/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "onemap-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/console")  # `/` sends the superuser (city commander) to the console
    page.wait_for_function("() => window.oneMap && window.oneMap.loaded() && window.oneMap.areTilesLoaded() && "
                           "window.oneMapLive && window.oneMapLive.state === 'live'", timeout=60_000)
    assert page.evaluate("() => window.__cspViolations") == []
    page.goto(f"{server}/admin/geo/camera/")
    page.click("#result_list tbody tr th a")
    page.wait_for_function("() => window.geodjango_geom && window.geodjango_geom.map.getLayers().item(0)"
                           ".getSource().getFeatures().length > 0", timeout=60_000)
    assert page.evaluate("() => window.__cspViolations") == []
    assert not [m for m in console if "Content Security Policy" in m], console
    context.close()
