/* The dispatcher's console: the map of the dispatcher's jurisdiction with a layer switcher
   (legend and counts), search that flies to a grid cell, street, community or hotspot, clickable
   officers and vehicles, and keyboard shortcuts. The task screens (console_tasks.js) add their
   layer group with registerLayerGroup (basemap.js) and their keys to SHORTCUTS. */
/* global maplibregl */
import {LAYER_GROUPS} from './basemap.js';
import {t} from './i18n.js';
import {installTasks} from './console_tasks.js';
import {startLive} from './live_units.js';
import {createMap, installPopups, readConfig, whenLoaded} from './map_app.js';

const config = readConfig();
const state = {summary: null, hidden: new Set()};
let map, live;

function groupVisible(group, visible) {
  if (visible) state.hidden.delete(group.id); else state.hidden.add(group.id);
  for (const id of group.layers) {
    if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
  }
  if (group.kind) live.setKindVisible(group.kind, visible);
  const box = document.querySelector(`#layer-list input[data-group="${group.id}"]`);
  if (box) box.checked = visible;
}

function renderLayerList() {
  const list = document.getElementById('layer-list');
  const rows = LAYER_GROUPS.filter((g) => g.kind || g.layers.some((id) => map.getLayer(id))).map(function (group, index) {
    const row = document.createElement('li');
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = !state.hidden.has(group.id);
    box.dataset.group = group.id;
    box.addEventListener('change', () => groupVisible(group, box.checked));
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = group.swatch;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = t(group.label);
    const key = document.createElement('kbd');
    key.textContent = index < 9 ? String(index + 1) : '';
    const count = document.createElement('span');
    count.className = 'count';
    count.dataset.count = group.id;
    const value = group.count ? group.count(state.summary, live) : null;
    count.textContent = value === null || value === undefined ? '' : String(value);
    label.append(box, swatch, name, count, key);
    row.appendChild(label);
    return row;
  });
  list.replaceChildren(...rows);
}

function updateCounts() {
  for (const group of LAYER_GROUPS) {
    const element = document.querySelector(`[data-count="${group.id}"]`);
    const value = element && group.count ? group.count(state.summary, live) : null;
    if (element) element.textContent = value === null || value === undefined ? '' : String(value);
  }
}

function showLiveStatus(current) {
  live = current;  // startLive reports its first state before it returns
  const status = document.getElementById('live-status');
  const labels = {connecting: '连接中', live: '实时', reconnecting: '重连中'};
  const counts = live.counts();
  status.textContent = `${t(labels[live.state])} · ${counts.total} ${t('单位')}` + (counts.stale ? ` · ${counts.stale} ${t('失联')}` : '');
  status.dataset.state = live.state;
  document.getElementById('banner-disconnected').hidden = live.state !== 'reconnecting';
  document.getElementById('banner-lagging').hidden = !(live.state === 'live' && live.lagging);
}

async function refreshSummary() {
  const response = await fetch(config.summaryUrl, {credentials: 'same-origin'});
  if (response.ok) { state.summary = await response.json(); updateCounts(); }
}

/* Search: a grid code, a street, a community or a hotspot name; the pick flies there. */
const hit = {type: 'FeatureCollection', features: []};
function flyTo(result) {
  if (result.bbox) {
    map.fitBounds(result.bbox, {padding: 60, maxZoom: 17});
    const [w, s, e, n] = result.bbox;
    hit.features = [{type: 'Feature', properties: {}, geometry: {type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}];
  } else {
    map.flyTo({center: result.center, zoom: 17});
    hit.features = [{type: 'Feature', properties: {}, geometry: {type: 'Point', coordinates: result.center}}];
  }
  map.getSource('search-hit').setData(hit);
}

function installSearch() {
  const input = document.getElementById('search');
  const list = document.getElementById('search-results');
  let timer = null, results = [], ticket = 0;
  const KINDS = {gridcell: '网格', street: '街道', community: '社区', hotspot: '挂账点位'};
  function show(items, message) {
    results = items;
    list.replaceChildren(...items.map(function (item, index) {
      const row = document.createElement('li');
      row.tabIndex = -1;
      row.dataset.kind = item.kind;
      const kind = document.createElement('span'); kind.className = 'kind'; kind.textContent = t(KINDS[item.kind]);
      const name = document.createElement('span'); name.className = 'name'; name.textContent = item.name;
      const context = document.createElement('span'); context.className = 'context'; context.textContent = item.context || '';
      row.append(kind, name, context);
      row.addEventListener('mousedown', (event) => { event.preventDefault(); pick(index); });
      return row;
    }));
    if (message) { const row = document.createElement('li'); row.className = 'empty'; row.textContent = message; list.appendChild(row); }
    list.hidden = !items.length && !message;
  }
  function pick(index) {
    if (!results[index]) return;
    flyTo(results[index]);
    list.hidden = true;
    input.blur();
  }
  async function run() {
    const q = input.value.trim();
    if (!q) { show([]); return; }
    const mine = ++ticket;
    const response = await fetch(`${config.searchUrl}?q=${encodeURIComponent(q)}`, {credentials: 'same-origin'});
    if (mine !== ticket) return;
    if (!response.ok) { show([], t('搜索失败')); return; }
    const body = await response.json();
    show(body.results, body.results.length ? '' : t('无结果'));
  }
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => run().catch(() => {}), 200); });
  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter') { event.preventDefault(); clearTimeout(timer); run().then(() => pick(0)).catch(() => {}); }
    if (event.key === 'Escape') { input.value = ''; show([]); input.blur(); }
  });
  input.addEventListener('blur', () => { setTimeout(() => { list.hidden = true; }, 100); });
}

/* Keyboard shortcuts: one registry, also rendered as the help list (press ?). */
const SHORTCUTS = [
  {keys: ['/'], help: '搜索', run: () => document.getElementById('search').focus()},
  {keys: ['h'], help: '回到管辖范围', run: () => map.fitBounds(config.bbox, {padding: 24})},
  {keys: ['s'], help: '显示/隐藏失联单位', run: () => { const box = document.getElementById('hide-stale'); box.checked = !box.checked; live.setHideStale(box.checked); }},
  {keys: ['1-9'], help: '图层开关', match: (key) => /^[1-9]$/.test(key), run: (key) => {
    const box = document.querySelectorAll('#layer-list input')[Number(key) - 1];
    if (box) { box.checked = !box.checked; box.dispatchEvent(new Event('change')); }
  }},
  {keys: ['Esc'], help: '关闭弹窗', match: (key) => key === 'Escape', run: () => { map.oneMapPopup.remove(); document.getElementById('shortcut-help').hidden = true; }},
  {keys: ['?'], help: '快捷键', run: () => { const help = document.getElementById('shortcut-help'); help.hidden = !help.hidden; }},
];

function installShortcuts() {
  document.addEventListener('keydown', function (event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return;
    const shortcut = SHORTCUTS.find((s) => (s.match ? s.match(event.key) : s.keys.includes(event.key)));
    if (!shortcut) return;
    event.preventDefault();
    shortcut.run(event.key);
  });
  const help = document.getElementById('shortcut-help-list');
  help.replaceChildren(...SHORTCUTS.map(function (s) {
    const row = document.createElement('li');
    const key = document.createElement('kbd'); key.textContent = s.keys.join(' ');
    const text = document.createElement('span'); text.textContent = t(s.help);
    row.append(key, text);
    return row;
  }));
}

async function start() {
  map = await createMap(config);
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), 'top-right');
  map.addControl(new maplibregl.ScaleControl({unit: 'metric'}), 'bottom-left');
  await whenLoaded(map);
  map.addSource('search-hit', {type: 'geojson', data: hit});
  map.addLayer({id: 'search-hit-line', type: 'line', source: 'search-hit', paint: {'line-color': '#f59e0b', 'line-width': 3}});
  map.addLayer({id: 'search-hit-point', type: 'circle', source: 'search-hit', filter: ['==', ['geometry-type'], 'Point'],
    paint: {'circle-radius': 12, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#f59e0b', 'circle-stroke-width': 3}});
  live = startLive(map, config, {onState: showLiveStatus, onUnits(current) { showLiveStatus(current); updateCounts(); }});
  installPopups(map, config, live);
  const tasks = installTasks(map, config, {shortcuts: SHORTCUTS});
  document.getElementById('hide-stale').addEventListener('change', (event) => live.setHideStale(event.target.checked));
  renderLayerList();
  installSearch();
  installShortcuts();
  refreshSummary().catch(() => {});
  setInterval(() => refreshSummary().catch(() => {}), 60_000);
  window.oneMapConsole = {groupVisible: (id, visible) => groupVisible(LAYER_GROUPS.find((g) => g.id === id), visible), flyTo, tasks};
}

start().catch((error) => console.error(error));
