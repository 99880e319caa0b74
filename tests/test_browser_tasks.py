"""The task loop in a real browser, three screens at once: a dispatcher (donghuamen) creates a task
by a click on the map in 东华门街道 and assigns the recommended officer (officer1, placed beside the
point through the real ingest); officer1's phone (390×844, geolocation granted) receives the push,
accepts while offline (delivered once when back online) and arrives; the wall's panels and feed
show the change. Also: a half-written task survives an expired session. Screenshots in
.var/artifacts/."""

# ruff: noqa: F811 (the fixtures `server` and `browser` come from tests.browser_support)
from __future__ import annotations

from typing import Any

import pytest

from tests.browser_support import (  # noqa: F401 (fixtures)
    browser,
    in_db_thread,
    log_in,
    open_mode,
    screenshot,
    server,
    settle,
)

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db
def test_the_accounts_and_categories_these_tests_use_exist() -> None:
    """First in the module: it makes pytest-django set up the test database (see
    test_browser_modes.py) and checks what the flow below relies on."""
    from django.contrib.auth import get_user_model

    from command.models import Category

    users = ("wall", "donghuamen", "officer1")
    assert get_user_model().objects.filter(username__in=users, profile__isnull=False).count() == len(users)
    assert Category.objects.filter(active=True, unit_kinds__contains="officer").exists()


@pytest.fixture(scope="module")
def scene(django_db_blocker):  # type: ignore[no-untyped-def]
    """A point in 东华门街道, officer1 placed 30 m from it (every other unit stale, so officer1 is
    the first recommendation), and a category for officers without an auto-dispatch rule."""
    from django.db import connection

    from command.models import Category
    from command.workflow import OPEN_STATES
    from geo.models import Officer
    from tests.dispatch_support import STREET, offset, place_officer, point_in_street

    def prepare() -> dict[str, Any]:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE geo_officer SET position_at = now() - interval '1 day'"
                           " WHERE position_at > now() - interval '1 day'")
            cursor.execute("UPDATE geo_vehicle SET position_at = now() - interval '1 day'"
                           " WHERE position_at > now() - interval '1 day'")
        # A grid cell of the street with no open task near its point (earlier runs leave theirs).
        cursor = connection.cursor()
        cursor.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) p, g.code FROM geo_gridcell g"
            " WHERE g.street_id = %s) c WHERE NOT EXISTS (SELECT 1 FROM command_task t WHERE t.state = ANY(%s)"
            " AND ST_DWithin(t.geom::geography, c.p::geography, 60)) ORDER BY c.code LIMIT 1",
            [STREET, list(OPEN_STATES)])
        row = cursor.fetchone()
        lon, lat = row if row else point_in_street(STREET)
        officer = Officer.objects.get(profile__user__username="officer1")
        at = offset(lon, lat, 30, 10)
        place_officer(officer, *at)
        category = (Category.objects.filter(active=True, unit_kinds="officer")
                    .exclude(rules__enabled=True).order_by("code").first())
        assert category is not None
        return {"lon": lon, "lat": lat, "officer": officer.pk, "category": category.code, "officer_at": at}

    return in_db_thread(django_db_blocker, prepare)


def click_on_map(page: Any, lon: float, lat: float) -> None:
    point = page.evaluate("""([lon, lat]) => {
        const m = window.oneMap, p = m.project([lon, lat]), box = m.getCanvas().getBoundingClientRect();
        return {x: box.left + p.x, y: box.top + p.y};
      }""", [lon, lat])
    page.mouse.click(point["x"], point["y"])


def task_detail(page: Any, task_id: int) -> dict[str, Any]:
    return page.evaluate("(id) => fetch('/api/tasks/' + id).then(r => r.json())", task_id)  # type: ignore[no-any-return]


def test_dispatcher_phone_and_wall_work_one_task_together(server, browser, scene):
    lon, lat = scene["lon"], scene["lat"]
    officer_lon, officer_lat = scene["officer_at"]  # where the phone is (its fixes go there too)
    wall, _ = open_mode(browser, server, "wall", "wall", query="?tour=off", width=1920, height=1080)
    phone, _ = open_mode(browser, server, "officer1", "field", width=390, height=844, is_mobile=True, has_touch=True,
                         geolocation={"longitude": officer_lon, "latitude": officer_lat, "accuracy": 10}, permissions=["geolocation"])
    console, _ = open_mode(browser, server, "donghuamen", "console", width=1600, height=900)
    phone.wait_for_function("() => document.body.dataset.link === 'open'", timeout=30_000)
    phone.check("#duty-toggle")  # the browser's position: the own position and the distances
    phone.wait_for_function("() => window.oneMapField && window.oneMapField.position !== null")
    wall.wait_for_function("() => document.querySelector('#wall-task-kpis [data-kpi=closure-rate]')", timeout=60_000)
    wall.wait_for_function("() => window.oneMapWall && window.oneMapWall.tasks && window.oneMapWall.tasks.live && window.oneMapWall.tasks.live.state === 'live'", timeout=60_000)
    assert wall.inner_text("#wall-task-kpis [data-kpi=closure-rate] .kpi-value").endswith(("%", "–"))

    # The dispatcher clicks the map at the point and fills the form.
    console.wait_for_function("() => window.oneMapConsoleTasks && window.oneMapConsoleTasks.categories.length > 0")
    console.wait_for_function("() => window.oneMapTasks && window.oneMapTasks.state === 'live'")
    assert "tasks" in console.eval_on_selector_all("#layer-list input", "boxes => boxes.map(b => b.dataset.group)")
    console.evaluate("([lon, lat]) => window.oneMap.jumpTo({center: [lon, lat], zoom: 18})", [lon, lat])
    settle(console)
    click_on_map(console, lon, lat)
    try:
        console.wait_for_selector("#task-create select[name=category]", timeout=5000)
    except Exception:
        print(console.evaluate("""([lon, lat]) => { const m = window.oneMap, p = m.project([lon, lat]);
            return [p, m.queryRenderedFeatures([[p.x - 5, p.y - 5], [p.x + 5, p.y + 5]]).map(f => f.layer.id),
                    document.getElementById('task-error').textContent, document.getElementById('task-create').outerHTML.slice(0, 300)]; }""", [lon, lat]))
        raise
    console.select_option("#task-create select[name=category]", scene["category"])
    console.select_option("#task-create select[name=source]", "patrol")
    console.fill("#task-create textarea[name=description]", "浏览器测试：占道经营")
    console.click("#task-create button[type=submit]")
    # The recommendations are drawn: officer1 first, with a line from the unit to the task.
    first = console.wait_for_selector("#task-detail .rec-list li[data-rank='1']", timeout=30_000)
    assert first is not None and first.get_attribute("data-rec") == f"officer-{scene['officer']}"
    assert " m" in first.inner_text() and "°" in first.inner_text()
    task_id = console.evaluate("() => window.oneMapConsoleTasks.selected")
    number = console.inner_text("#task-detail .number")
    settle(console, "window.oneMap.queryRenderedFeatures({layers: ['task-rec-line']}).length > 0")
    settle(console, "window.oneMap.queryRenderedFeatures({layers: ['task']}).some(f => f.properties.id === arg)", task_id)
    screenshot(console, "console-tasks-recommendations")
    # The wall's feed shows the new task; its open tasks include it.
    wall.wait_for_function("(n) => document.getElementById('wall-task-feed').innerText.includes(n)", arg=number, timeout=30_000)
    assert wall.evaluate("(id) => window.oneMapWall.tasks.live.tasks.has(id)", task_id)

    # Assign the first recommendation (a: the keyboard shortcut): filed and dispatched.
    console.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the page
    console.keyboard.press("a")
    console.wait_for_selector("#task-detail .state[data-state=dispatched]", timeout=30_000)

    # The phone: the push arrives with its card, and the task is in the officer's list.
    phone.wait_for_selector("[data-push][data-kind=task]", timeout=30_000)
    assert number in phone.inner_text("[data-push][data-kind=task]")
    card = f"#field-tasks [data-task='{task_id}']"
    phone.wait_for_selector(f"{card}[data-state=dispatched] .task-action[data-action=accept]", timeout=30_000)
    assert int(phone.get_attribute(f"{card} .distance", "data-distance") or "-1") < 50
    screenshot(phone, "field-390x844-task")

    # Accept while offline: kept on the phone, sent once when the connection returns.
    phone.context.set_offline(True)
    phone.click(f"{card} .task-action[data-action=accept]")
    phone.wait_for_selector(f"{card}[data-queued='1']")
    queued = phone.evaluate("() => window.oneMapField.queue.items()")
    assert [item["action"] for item in queued] == ["accept"]
    assert task_detail(console, task_id)["state"] == "dispatched"  # nothing reached the server
    phone.context.set_offline(False)
    phone.wait_for_selector(f"{card}[data-state=accepted][data-queued='0']", timeout=30_000)
    assert task_detail(console, task_id)["state"] == "accepted"
    # The same action replayed (as after a lost answer): a 409 taken as done, no second accept.
    left = phone.evaluate("async (item) => { const q = window.oneMapField.queue; q.save([item]); await q.flush(); return q.items().length; }",
                          queued[0])
    assert left == 0 and phone.query_selector("#field-tasks .task-error") is None

    # Arrive, with the phone's position.
    phone.click(f"{card} .task-action[data-action=arrive]")
    phone.wait_for_selector(f"{card}[data-state=on_site][data-queued='0']", timeout=30_000)
    detail = task_detail(console, task_id)
    assert detail["state"] == "on_site"
    actions = [event["action"] for event in detail["timeline"]]
    assert actions.count("accept") == 1 and actions.count("arrive") == 1, actions
    arrive = next(event for event in detail["timeline"] if event["action"] == "arrive")
    assert arrive["lon"] == pytest.approx(officer_lon, abs=1e-5) and arrive["lat"] == pytest.approx(officer_lat, abs=1e-5)
    screenshot(phone, "field-390x844-on-site")

    # The console follows live: the timeline shows the phone's steps.
    console.wait_for_selector("#task-detail .timeline li[data-action=arrive]", timeout=30_000)
    console.wait_for_selector("#task-detail .state[data-state=on_site]")
    screenshot(console, "console-tasks-on-site")
    screenshot(wall, "wall-1920x1080-tasks")
    for page in (wall, phone, console):
        page.context.close()


def test_console_failed_action_says_why_and_a_draft_survives_an_expired_session(server, browser, scene):
    console, _ = open_mode(browser, server, "donghuamen", "console", width=1600, height=900)
    console.wait_for_function("() => window.oneMapConsoleTasks && window.oneMapConsoleTasks.categories.length > 0")
    # A place outside the jurisdiction: the API's problem, in words, not a blank page.
    console.evaluate("() => window.oneMapConsole.tasks.openCreate(116.2, 40.2)")
    console.fill("#task-create textarea[name=description]", "管辖范围外")
    console.click("#task-create button[type=submit]")
    error = console.wait_for_selector("#task-error:not([hidden])", timeout=30_000)
    assert error is not None and error.inner_text().strip() != ""
    assert console.is_visible("#map")
    # The session expires while a task is half-written: after the login the form is back.
    console.evaluate("([lon, lat]) => window.oneMapConsole.tasks.openCreate(lon, lat)", [scene["lon"], scene["lat"]])
    console.fill("#task-create textarea[name=description]", "登录过期前写了一半")
    console.context.clear_cookies()
    console.click("#task-create button[type=submit]")
    console.wait_for_url("**/login/**", timeout=30_000)
    log_in(console, server, "donghuamen")
    console.wait_for_url(f"{server}/console", timeout=30_000)
    console.wait_for_selector("#task-create:not([hidden]) textarea[name=description]", timeout=60_000)
    assert console.input_value("#task-create textarea[name=description]") == "登录过期前写了一半"
    console.context.close()
