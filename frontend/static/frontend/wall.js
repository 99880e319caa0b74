/* The video wall: a dark map with no interaction, KPI panels, timed tours of the districts, units
   fading with the age of their last fix, and banners when the live feed lags or drops.

   The task panels (wall_tasks.js) fill themselves through window.oneMapWall (setTaskKpis,
   setTaskFeed): their containers (#wall-task-kpis, #wall-task-feed) are in the page, empty and
   hidden until then. */
import {age, t} from './i18n.js';
import {startLive} from './live_units.js';
import {createMap, readConfig, whenLoaded} from './map_app.js';
import {startWallTasks} from './wall_tasks.js';
import {parseTile, tileCamera, tourIndex} from './wall_view.js';

const config = readConfig();
const params = new URLSearchParams(location.search);
const tile = parseTile(params.get('tile')) || parseTile('');
// ?tour=overdue: the tour goes through the overdue tasks instead of the districts (wall_tasks.js).
const touring = !['off', 'overdue'].includes(params.get('tour')) && config.tour.stops.length > 1;
const panels = params.has('panels') ? params.get('panels') !== '0' : tile.col === 0 && tile.row === 0;
document.body.classList.toggle('wall-no-panels', !panels);
if (!parseTile(params.get('tile'))) document.getElementById('wall-bad-tile').hidden = false;

function setKpi(name, value, detail) {
  const box = document.querySelector(`[data-kpi="${name}"]`);
  if (!box) return;
  box.querySelector('.kpi-value').textContent = value === null || value === undefined ? '–' : String(value);
  const extra = box.querySelector('.kpi-detail');
  if (extra) extra.textContent = detail || '';
}

function banner(id, show) {
  document.getElementById(id).hidden = !show;
}

function stopExtent(index) {
  return index === 0 ? config.bbox : config.tour.stops[index - 1].bbox;
}

function stopName(index) {
  return index === 0 ? document.body.dataset.jurisdiction : config.tour.stops[index - 1].name;
}

function cameraFor(index, map) {
  const canvas = map.getContainer();
  return tileCamera(stopExtent(index), tile, canvas.clientWidth, canvas.clientHeight);
}

async function start() {
  const first = touring ? tourIndex(config.tour.stops, config.tour.dwellSeconds) : 0;
  const map = await createMap(config, {interactive: false, fadeDuration: 0});
  const firstIdle = new Promise((resolve) => map.once('idle', resolve));  // before it can fire
  map.jumpTo(cameraFor(first, map));
  await whenLoaded(map);
  // The basemap first (with the units as the tiles have them), then the live feed: parsing a
  // city snapshot (~9,500 units, ~3 MB of JSON) and clustering it would otherwise hold up the
  // first complete picture by seconds.
  await firstIdle;

  const live = startLive(map, config, {
    fade: true,
    onState(state) {
      // Disconnected: shown when the socket drops, gone as soon as it is live again.
      banner('banner-disconnected', state.state === 'reconnecting');
      banner('banner-lagging', state.state === 'live' && state.lagging);
    },
    onUnits(state) {  // (counted before ?stale=hide takes them off the map)
      const counts = state.counts();
      setKpi('units-on-duty', counts.fresh, `${counts.total} ${t('单位')}`);
      setKpi('units-stale', counts.stale);
    },
  });

  async function refreshSummary() {
    const response = await fetch(config.summaryUrl, {credentials: 'same-origin'});
    if (!response.ok) return;
    const summary = await response.json();
    setKpi('cameras-online', summary.cameras.online, `/ ${summary.cameras.total}`);
  }
  refreshSummary().catch(() => {});
  setInterval(() => refreshSummary().catch(() => {}), 60_000);

  let current = first;
  const tourLabel = document.getElementById('tour-status');
  function showStop() { if (tourLabel) tourLabel.textContent = `${t('巡览')} · ${stopName(current)}`; }
  showStop();
  if (touring) {
    setInterval(function () {
      const next = tourIndex(config.tour.stops, config.tour.dwellSeconds);
      if (next === current) return;
      current = next;
      map.flyTo({...cameraFor(current, map), duration: 3000, essential: true});
      showStop();
    }, 1000);
  }
  window.addEventListener('resize', () => map.jumpTo(cameraFor(current, map)));

  const clock = document.getElementById('wall-clock');
  setInterval(() => { clock.textContent = new Date().toLocaleTimeString(document.documentElement.lang, {hour12: false}); }, 1000);
  live.setHideStale(params.get('stale') === 'hide');
  window.oneMapWall.live = live;
  startWallTasks(map, {tile, tour: params.get('tour') === 'overdue'});
  window.oneMapWall.age = age;
}

/* Hooks for the task panels (the dispatch screens): items are [{id, label, value, detail}] and
   [{id, text, at, tone}]. Nothing is shown until they are called. */
function renderItems(container, items, build) {
  container.replaceChildren(...items.map(build));
  container.hidden = items.length === 0;
}

window.oneMapWall = {
  tile,
  setTaskKpis(items) {
    renderItems(document.getElementById('wall-task-kpis'), items, function (item) {
      const box = document.createElement('div');
      box.className = 'kpi';
      box.dataset.kpi = item.id;
      const value = document.createElement('span'); value.className = 'kpi-value'; value.textContent = String(item.value);
      const label = document.createElement('span'); label.className = 'kpi-label'; label.textContent = item.label;
      const detail = document.createElement('span'); detail.className = 'kpi-detail'; detail.textContent = item.detail || '';
      box.append(value, label, detail);
      return box;
    });
  },
  setTaskFeed(items) {
    renderItems(document.getElementById('wall-task-feed'), items, function (item) {
      const row = document.createElement('li');
      row.dataset.tone = item.tone || '';
      row.textContent = item.text;
      return row;
    });
  },
};

start().catch((error) => { console.error(error); banner('banner-disconnected', true); });
