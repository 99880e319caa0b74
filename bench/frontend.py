"""Front-end benchmark, in headless Chromium (Playwright, Debian's /usr/bin/chromium):

1. Page load to the map's first `idle` on /wall at 1920x1080, against a bare MapLibre page with
   the same base layers (the server's /tiles/style.json as it is, no theme, no labels, no live
   units, no panels) measured in the same run, alternating, each load in a fresh browser context
   (cold cache). Time is from navigation start (performance.now() at the first `idle`).
2. Bytes transferred for the first view of each mode (until the first `idle`): the encoded bytes
   of every HTTP response (Chrome's Network.loadingFinished), and apart from them the /ws/map
   snapshot's payload (the WebSocket frames, uncompressed).
3. On /console (a street dispatcher, 1600x900): a click on a task on the map to its recommended
   units drawn (the mouse event's timestamp to the frame in which the recommendation lines are
   rendered: the task's detail and /recommendations fetched, the lines' GeoJSON parsed and drawn).
   An open, assignable task of the dispatcher's street is used (one is created if there is none).
   `--only recommend` runs this part alone.

Start a server yourself against a database with the fixtures and demo accounts, then run, e.g.:
    .venv/bin/python -m uvicorn config.asgi:application --port 18600 --no-access-log --log-level warning &
    .venv/bin/python bench/frontend.py --url http://127.0.0.1:18600 --runs 5
Logging in is not timed (the session cookie is made before the timed navigation)."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import command_line, record, table  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
        "--disable-background-networking", "--disable-component-update"]
PASSWORD = "onemap-demo"
# window.oneMap is set by both pages; its first `idle` is recorded against navigation start.
IDLE_PROBE = """
Object.defineProperty(window, 'oneMap', {configurable: true, get() { return this.__map; }, set(map) {
  this.__map = map;
  map.once('idle', () => { window.__idleAt = performance.now(); });
}});
"""
BARE_PATH = "/bench-bare-maplibre"
BARE_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/vendor/maplibre-gl/maplibre-gl.css">
<style>html, body, #map { margin: 0; height: 100%; }</style></head><body><div id="map"></div>
<script src="/static/vendor/maplibre-gl/maplibre-gl.js"></script>
<script>
  window.oneMap = new maplibregl.Map({container: 'map', style: '/tiles/style.json', bounds: BBOX,
    fitBoundsOptions: {padding: 24}, interactive: false, attributionControl: false,
    localIdeographFontFamily: 'Noto Sans CJK SC, sans-serif'});
</script></body></html>"""
MODES = {"wall": "wall", "console": "commander", "field": "officer1"}
DISPATCHER = "donghuamen"
# An assignable task of the dispatcher (or a new one in the dispatcher's street), in view at street zoom.
FIND_TASK = """async () => {
  let body = await fetch('/api/tasks?state=reported,filed,dispatched,accepted&limit=1').then(r => r.json());
  if (!body.items.length) {
    const me = await fetch('/api/me').then(r => r.json());
    const cells = await fetch('/api/map/search?q=' + me.street).then(r => r.json());
    const cell = cells.results.find(r => r.kind === 'gridcell');
    const [w, s, e, n] = cell.bbox || [...cell.center, ...cell.center];
    cell.center = [(w + e) / 2, (s + n) / 2];
    const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
    const category = (await fetch('/api/categories').then(r => r.json())).items.find(c => c.unit_kinds.includes('officer'));
    await fetch('/api/tasks', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
      body: JSON.stringify({lon: cell.center[0], lat: cell.center[1], category: category.code, source: 'patrol',
                            description: 'bench/frontend.py'})});
    body = await fetch('/api/tasks?state=reported,filed,dispatched,accepted&limit=1').then(r => r.json());
  }
  const task = body.items[0];
  window.oneMap.jumpTo({center: [task.lon, task.lat], zoom: 17});
  return task;
}"""


def new_context(browser: Any, base: str, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    # Back to the favicon after logging in: the mode's page would fill the cache before the timed load.
    page.goto(f"{base}/login/?next=/favicon.ico")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.close()
    return context


def timed_load(browser: Any, base: str, path: str, bare_bbox: list[float] | None = None) -> tuple[float, int, int]:
    """(ms to first idle, HTTP bytes, WebSocket payload bytes) of one cold load."""
    context = new_context(browser, base, "wall")
    page = context.new_page()
    page.add_init_script(IDLE_PROBE)
    if bare_bbox is not None:
        page.route(f"{base}{BARE_PATH}", lambda route: route.fulfill(
            content_type="text/html", body=BARE_PAGE.replace("BBOX", str(bare_bbox))))
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    totals = {"http": 0, "ws": 0}
    cdp.on("Network.loadingFinished", lambda e: totals.__setitem__("http", totals["http"] + int(e["encodedDataLength"])))
    cdp.on("Network.webSocketFrameReceived", lambda e: totals.__setitem__("ws", totals["ws"] + len(e["response"]["payloadData"].encode())))
    page.goto(f"{base}{path}")
    page.wait_for_function("() => window.__idleAt !== undefined", timeout=120_000)
    idle = float(page.evaluate("() => window.__idleAt"))
    context.close()
    return idle, totals["http"], totals["ws"]


def first_view_bytes(browser: Any, base: str, mode: str, username: str) -> tuple[float, int, int]:
    context = new_context(browser, base, username)
    page = context.new_page()
    page.add_init_script(IDLE_PROBE)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    totals = {"http": 0, "ws": 0}
    cdp.on("Network.loadingFinished", lambda e: totals.__setitem__("http", totals["http"] + int(e["encodedDataLength"])))
    cdp.on("Network.webSocketFrameReceived", lambda e: totals.__setitem__("ws", totals["ws"] + len(e["response"]["payloadData"].encode())))
    page.goto(f"{base}/{mode}" + ("?tour=off" if mode == "wall" else ""))
    page.wait_for_function("() => window.__idleAt !== undefined", timeout=120_000)
    if mode != "field":  # wait for the snapshot, part of the first view
        page.wait_for_function("() => window.oneMapLive && window.oneMapLive.state === 'live'", timeout=120_000)
    idle = float(page.evaluate("() => window.__idleAt"))
    context.close()
    return idle, totals["http"], totals["ws"]


def click_to_recommendations(browser: Any, base: str, runs: int) -> list[float]:
    """ms from a click on a task to its recommendations drawn, `runs` times (after one warm-up)."""
    context = new_context(browser, base, DISPATCHER)
    page = context.new_page()
    page.set_viewport_size({"width": 1600, "height": 900})
    page.goto(f"{base}/console")
    page.wait_for_function("() => window.oneMapConsoleTasks && window.oneMapConsoleTasks.categories.length > 0",
                           timeout=120_000)
    task = page.evaluate(FIND_TASK)
    ready = "(id) => window.oneMap.loaded() && window.oneMap.areTilesLoaded() && " \
            "window.oneMap.queryRenderedFeatures({layers: ['task']}).some(f => f.properties.id === id)"
    page.wait_for_function(ready, arg=task["id"], timeout=120_000)
    times = []
    for run in range(runs + 1):
        # From a settled map: the frames of the previous selection's removal are not counted.
        page.evaluate("() => new Promise((done) => { window.oneMapConsole.tasks.deselect(); "
                      "window.oneMap.once('idle', done); window.oneMap.triggerRepaint(); })")
        point = page.evaluate("""(t) => { const m = window.oneMap, p = m.project([t.lon, t.lat]),
            box = m.getCanvas().getBoundingClientRect(); return {x: box.left + p.x, y: box.top + p.y}; }""", task)
        page.mouse.click(point["x"], point["y"])
        page.wait_for_function("() => window.oneMapConsoleTasks.recsDrawnAt !== null", timeout=30_000)
        if run:  # the first is a warm-up (connections, the worker's code paths)
            times.append(float(page.evaluate("() => window.oneMapConsoleTasks.recsDrawnAt - window.oneMapConsoleTasks.lastClickAt")))
    context.close()
    return times


def recommend_text(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    verdict = "meets" if statistics.median(times) <= 300 else "misses"
    return (table(["/console (donghuamen)", "median ms", "p95 ms", "max ms", "clicks"],
                  [["click on a task -> recommendations drawn", f"{statistics.median(times):.0f}", f"{p95:.0f}",
                    f"{max(times):.0f}", str(len(times))]])
            + f"\n\nTarget click -> recommendations drawn <= 300 ms: {verdict} (median).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--clicks", type=int, default=20, help="clicks for the recommendations timing")
    parser.add_argument("--only", choices=["all", "recommend"], default="all")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    base = args.url.rstrip("/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        clicks = click_to_recommendations(browser, base, args.clicks)
        if args.only == "recommend":
            browser.close()
            text = recommend_text(clicks) + " Headless Chromium."
            print(text)
            if not args.no_record:
                record("Front end: click to recommendations (bench/frontend.py --only recommend)", command_line(), text)
            return
        probe = new_context(browser, base, "wall").new_page()
        probe.goto(f"{base}/wall?tour=off")
        bbox = probe.evaluate("() => JSON.parse(document.getElementById('map-config').textContent).bbox")
        probe.context.close()
        wall: list[float] = []
        bare: list[float] = []
        for _ in range(args.runs):  # alternating, so drift on a shared machine hits both alike
            wall.append(timed_load(browser, base, "/wall?tour=off")[0])
            bare.append(timed_load(browser, base, BARE_PATH, bbox)[0])
        views = {mode: first_view_bytes(browser, base, mode, user) for mode, user in MODES.items()}
        browser.close()

    rows = [["/wall (1920x1080)", f"{statistics.median(wall):.0f}", f"{min(wall):.0f}", f"{max(wall):.0f}"],
            ["bare MapLibre, same base layers", f"{statistics.median(bare):.0f}", f"{min(bare):.0f}", f"{max(bare):.0f}"]]
    load = table(["page", "ms to first idle (median)", "min", "max"], rows)
    sizes = table(["mode (user)", "HTTP KB (encoded)", "WebSocket KB (payload)", "ms to first idle"],
                  [[f"/{m} ({MODES[m]})", f"{v[1] / 1024:.0f}", f"{v[2] / 1024:.0f}", f"{v[0]:.0f}"] for m, v in views.items()])
    verdict = "meets" if statistics.median(wall) <= 3000 else "misses"
    text = (f"{load}\n\n{sizes}\n\n{args.runs} cold loads each, alternating, headless Chromium. "
            f"Target /wall first idle <= 3 s: {verdict}.\n\n{recommend_text(clicks)}")
    print(text)
    if not args.no_record:
        record("Front end (bench/frontend.py)", command_line(), text)


if __name__ == "__main__":
    main()
