/* The console's task screens: the tasks layer (circles coloured by state, overdue ringed), a task
   created by a click on the map (or a hotspot), the task list with its filters, a task's timeline
   and its actions (from `allowed_actions`), the recommended units drawn on the map and assigned
   (with an override reason when not the first), all kept live by the /ws/map tasks layer.
   A half-written task survives an expired session (sessionStorage, restored after the login). */
import {registerLayerGroup} from './basemap.js';
import {t} from './i18n.js';
import {ACTION_LABELS, STATE_COLOURS, STATE_LABELS, api, compass, distanceText, onExpired, el} from './task_api.js';
import {startTasks, tasksGeoJson} from './tasks_live.js';

const DRAFT_KEY = 'onemap.console.taskDraft';
const EMPTY = {type: 'FeatureCollection', features: []};
const SOURCES = [['patrol', '巡查上报'], ['complaint', '12345 诉求'], ['video', '视频/非现场发现'], ['ledger', '台账'],
                 ['assigned', '上级交办']];
// Actions taken from the detail panel with their inputs; dispatch/reassign go through the recommendations.
const BUTTONS = {
  file: {}, verify: {}, close: {}, cancel: {reason: true}, rework: {reason: true}, extend: {reason: true, hours: true},
};

export function installTasks(map, config, {shortcuts}) {
  const ui = {categories: [], selected: null, detail: null, recs: [], filters: {state: '', overdue: '', category: ''},
              lastClickAt: null, recsDrawnAt: null};
  window.oneMapConsoleTasks = ui;  // for the browser tests and the bench
  const panel = document.getElementById('console-tasks');
  panel.hidden = false;

  // The layer: live open tasks as circles; the overdue ones ringed in red under them.
  map.addSource('tasks-live', {type: 'geojson', data: EMPTY});
  map.addSource('task-recs', {type: 'geojson', data: EMPTY});
  map.addLayer({id: 'task-rec-line', type: 'line', source: 'task-recs', filter: ['==', ['geometry-type'], 'LineString'],
    paint: {'line-color': ['case', ['==', ['get', 'rank'], 1], '#dc2626', '#f59e0b'], 'line-width': 2.5, 'line-dasharray': [2, 1]}});
  map.addLayer({id: 'task-rec-unit', type: 'circle', source: 'task-recs', filter: ['==', ['geometry-type'], 'Point'],
    paint: {'circle-radius': 9, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#dc2626', 'circle-stroke-width': 2.5}});
  const colour = ['match', ['get', 'state'], ...Object.entries(STATE_COLOURS).flat(), '#2563eb'];
  map.addLayer({id: 'task-overdue', type: 'circle', source: 'tasks-live', filter: ['==', ['get', 'overdue'], true],
    paint: {'circle-radius': 12, 'circle-color': 'rgba(220,38,38,0.25)', 'circle-stroke-color': '#dc2626', 'circle-stroke-width': 2}});
  map.addLayer({id: 'task', type: 'circle', source: 'tasks-live',
    paint: {'circle-radius': ['case', ['boolean', ['feature-state', 'selected'], false], 10, 6], 'circle-color': colour,
            'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1.5}});
  const live = startTasks({onChange: onTasksChanged, onEvent: onTaskEvent});
  registerLayerGroup({id: 'tasks', label: '任务', swatch: STATE_COLOURS.dispatched, layers: ['task-overdue', 'task'],
                      count: () => { const c = live.counts(); return c.overdue ? `${c.open} (${c.overdue} ${t('超期')})` : c.open; }});

  // The selected task is a feature state: no re-layout of the source in the worker (a data-driven
  // paint change would rebuild its buckets, frames later).
  let highlighted = null;
  function highlight() {
    if (highlighted !== null) map.setFeatureState({source: 'tasks-live', id: highlighted}, {selected: false});
    highlighted = ui.selected;
    if (highlighted !== null) map.setFeatureState({source: 'tasks-live', id: highlighted}, {selected: true});
  }

  // ---- the panel
  const createBox = el('form', {id: 'task-create', className: 'task-create', hidden: true});
  const filterBox = el('div', {className: 'task-filters'});
  const list = el('ul', {id: 'task-list', className: 'task-list'});
  const detail = el('section', {id: 'task-detail', className: 'task-detail', hidden: true});
  const message = el('p', {id: 'task-error', className: 'task-error', role: 'alert', hidden: true});
  panel.replaceChildren(el('h2', {}, t('任务')), message, createBox, filterBox, list, detail);

  function showError(error) {
    message.textContent = error ? (error.message || String(error)) : '';
    message.hidden = !error;
  }
  async function guarded(work) {
    showError(null);
    try { return await work(); } catch (error) { showError(error); return null; }
  }

  // ---- filters and the list
  const stateSelect = el('select', {id: 'task-filter-state', onchange: () => { ui.filters.state = stateSelect.value; refreshList(); }},
    el('option', {value: '', textContent: t('全部状态')}),
    ...Object.entries(STATE_LABELS).map(([value, label]) => el('option', {value, textContent: t(label)})));
  const overdueBox = el('input', {type: 'checkbox', id: 'task-filter-overdue',
    onchange: () => { ui.filters.overdue = overdueBox.checked ? 'true' : ''; refreshList(); }});
  const categorySelect = el('select', {id: 'task-filter-category', onchange: () => { ui.filters.category = categorySelect.value; refreshList(); }},
    el('option', {value: '', textContent: t('全部类别')}));
  filterBox.append(stateSelect, categorySelect, el('label', {}, overdueBox, ` ${t('超期')}`));

  let listTicket = 0;
  async function refreshList() {
    const mine = ++listTicket;
    const params = new URLSearchParams({limit: '30'});
    for (const [key, value] of Object.entries(ui.filters)) if (value) params.set(key, value);
    const body = await guarded(() => api('GET', `/api/tasks?${params}`));
    if (!body || mine !== listTicket) return;
    list.replaceChildren(...body.items.map((task) => el('li', {
      dataset: {task: String(task.id), state: task.state, overdue: String(task.overdue)},
      className: task.id === ui.selected ? 'selected' : '', tabIndex: 0,
      onclick: () => select(task.id, {fly: true}),
    }, el('span', {className: 'dot', style: `background:${STATE_COLOURS[task.state] || '#999'}`}),
       el('strong', {textContent: task.number}), ' ',
       el('span', {className: 'state', textContent: t(STATE_LABELS[task.state] || task.state)}),
       task.overdue ? el('span', {className: 'overdue', textContent: t('超期')}) : null,
       el('div', {className: 'meta', textContent: `${task.category_name} · ${task.street_name || task.district_name}`}))));
  }
  let listTimer = null;
  function refreshListSoon() { clearTimeout(listTimer); listTimer = setTimeout(() => refreshList(), 400); }

  function onTasksChanged() {
    map.getSource('tasks-live').setData(tasksGeoJson(live.open()));
    const count = document.querySelector('[data-count="tasks"]');
    if (count) { const c = live.counts(); count.textContent = c.overdue ? `${c.open} (${c.overdue} ${t('超期')})` : String(c.open); }
  }
  function onTaskEvent(event) {
    refreshListSoon();
    if (ui.selected === event.task.id && (!ui.detail || ui.detail.version < event.task.version)) loadDetail().catch(() => {});
  }

  // ---- a task: its detail, timeline, actions and recommendations
  // The detail and the recommendations are fetched together and drawn in the same frame: with a
  // software-rendered map (a wall PC, headless) every extra frame in between costs its full time.
  async function select(id, {fly = false} = {}) {
    ui.selected = id;
    for (const row of list.querySelectorAll('li')) row.classList.toggle('selected', row.dataset.task === String(id));
    const recsRequest = api('GET', `/api/tasks/${id}/recommendations?limit=5`).catch(() => null);
    const task = await loadDetail(false);
    const body = await recsRequest;
    if (!task || id !== ui.selected) return;
    showRecs(task, body);
    if (fly) map.flyTo({center: [task.lon, task.lat], zoom: Math.max(map.getZoom(), 15)});
  }

  async function loadDetail(render = true) {
    const id = ui.selected;
    const task = await guarded(() => api('GET', `/api/tasks/${id}`));
    if (!task || id !== ui.selected) return null;
    ui.detail = task;
    if (render) { live.keep(task); renderDetail(task); }
    return task;
  }

  function assignable(task) { return task.allowed_actions.some((a) => ['dispatch', 'reassign', 'file'].includes(a)); }

  function showRecs(task, body) {
    ui.recs = assignable(task) && body ? body.items : [];
    live.keep(task);
    renderDetail(task);
    drawRecs(task, highlight);
  }

  async function loadRecommendations(task) {
    const body = assignable(task) ? await guarded(() => api('GET', `/api/tasks/${task.id}/recommendations?limit=5`)) : null;
    if (task.id !== ui.selected) return;
    showRecs(task, body);
  }

  let drawTicket = 0;
  function drawRecs(task, then) {
    const features = [];
    for (const rec of ui.recs) {
      features.push({type: 'Feature', properties: {rank: rec.rank, key: `${rec.kind}-${rec.id}`},
                     geometry: {type: 'LineString', coordinates: [[rec.lon, rec.lat], [task.lon, task.lat]]}});
      features.push({type: 'Feature', properties: {rank: rec.rank, key: `${rec.kind}-${rec.id}`},
                     geometry: {type: 'Point', coordinates: [rec.lon, rec.lat]}});
    }
    map.getSource('task-recs').setData({type: 'FeatureCollection', features});
    // When the lines are on screen (setData is parsed in a worker: a frame or more later), for the bench.
    const ticket = ++drawTicket;
    const drawn = () => {
      if (ticket !== drawTicket) { map.off('render', drawn); return; }
      if (features.length && !map.queryRenderedFeatures({layers: ['task-rec-line']}).length) return;
      ui.recsDrawnAt = performance.now();
      map.off('render', drawn);
    };
    map.on('render', drawn);
    // Anything else that repaints (the highlight) waits for the lines' data: one frame with both,
    // rather than one frame without the lines first (a frame costs its full time on a slow GPU).
    const loaded = (event) => {
      if (event.sourceId !== 'task-recs' || !map.isSourceLoaded('task-recs')) return;
      map.off('sourcedata', loaded);
      if (then) then();
      map.triggerRepaint();
    };
    map.on('sourcedata', loaded);
  }

  function renderRecs(task) {
    const box = detail.querySelector('.task-recs');
    if (!box) return;
    if (!ui.recs.length) { box.replaceChildren(el('p', {className: 'hint', textContent: task.allowed_actions.includes('dispatch') ? t('无可推荐单位') : ''})); return; }
    const reason = el('input', {id: 'override-reason', type: 'text', maxLength: 200, placeholder: t('改派理由（未选第一推荐时必填）')});
    box.replaceChildren(el('h3', {textContent: t('推荐单位')}), el('ol', {className: 'rec-list'}, ...ui.recs.map((rec) => el('li', {
      dataset: {rec: `${rec.kind}-${rec.id}`, rank: String(rec.rank)}},
      el('strong', {textContent: rec.call_sign || rec.label}), ' ',
      el('span', {className: 'rec-meta', textContent: `${distanceText(rec.distance_m)} · ${compass(rec.bearing_deg)} ${Math.round(rec.bearing_deg)}° · ${t('在办')} ${rec.workload}`}),
      rec.flagged ? el('span', {className: 'flagged', textContent: t('辖区外')}) : null,
      el('button', {type: 'button', className: 'assign', textContent: t('派遣'), onclick: () => assign(rec, reason.value.trim())})))), reason);
  }

  async function assign(rec, override) {
    if (rec.rank !== 1 && !override) {
      showError(new Error(t('未选择第一推荐单位时需要填写改派理由')));
      document.getElementById('override-reason').focus();
      return;
    }
    await guarded(async () => {
      let task = ui.detail;
      if (task.allowed_actions.includes('file')) task = await api('POST', `/api/tasks/${task.id}/file`, {body: {}, headers: {'If-Match': String(task.version)}});
      const units = [{kind: rec.kind, id: rec.id}];
      const body = {units, ...(override ? {override_reason: override} : {})};
      if (task.allowed_actions.includes('dispatch')) task = await api('POST', `/api/tasks/${task.id}/dispatch`, {body, headers: {'If-Match': String(task.version)}});
      else if (task.allowed_actions.includes('reassign')) task = await api('POST', `/api/tasks/${task.id}/reassign`, {body: {...body, reason: override || t('调度改派')}, headers: {'If-Match': String(task.version)}});
      ui.detail = task;
      live.keep(task);
      renderDetail(task);
      await loadRecommendations(task);
      refreshListSoon();
    });
  }

  async function act(action, spec, inputs) {
    const body = {};
    if (spec.reason) {
      body.reason = inputs.reason.value.trim();
      if (!body.reason) { showError(new Error(t('此操作需要填写原因'))); inputs.reason.focus(); return; }
    }
    if (spec.hours) body.hours = Number(inputs.hours.value || 8);
    await guarded(async () => {
      const task = await api('POST', `/api/tasks/${ui.detail.id}/${action}`, {body, headers: {'If-Match': String(ui.detail.version)}});
      ui.detail = task;
      live.keep(task);
      renderDetail(task);
      await loadRecommendations(task);
      refreshListSoon();
    });
  }

  function renderDetail(task) {
    detail.hidden = false;
    const inputs = {reason: el('input', {type: 'text', className: 'action-reason', maxLength: 200, placeholder: t('原因')}),
                    hours: el('input', {type: 'number', className: 'action-hours', min: 1, max: 240, value: 8})};
    const buttons = task.allowed_actions.filter((a) => BUTTONS[a]).map((action) => el('button', {
      type: 'button', className: 'task-action', dataset: {action}, textContent: t(ACTION_LABELS[action]),
      onclick: () => act(action, BUTTONS[action], inputs)}));
    const needs = task.allowed_actions.some((a) => BUTTONS[a] && BUTTONS[a].reason);
    const timeline = el('ol', {className: 'timeline'}, ...task.timeline.map((event) => el('li', {dataset: {action: event.action}},
      el('time', {textContent: new Date(event.at).toLocaleString(document.documentElement.lang, {hour12: false})}), ' ',
      el('strong', {textContent: t(ACTION_LABELS[event.action] || event.action)}), ' ',
      el('span', {textContent: [event.actor, event.reason].filter(Boolean).join(' · ')}))));
    detail.replaceChildren(...[
      el('header', {}, el('strong', {className: 'number', textContent: task.number}), ' ',
         el('span', {className: 'state', dataset: {state: task.state}, textContent: t(STATE_LABELS[task.state] || task.state)}),
         task.overdue ? el('span', {className: 'overdue', textContent: t('超期')}) : null,
         el('button', {type: 'button', className: 'close-detail', textContent: '×', onclick: deselect})),
      el('p', {className: 'meta', textContent: `${task.category_name} · ${task.street_name || task.district_name}` +
        (task.deadline ? ` · ${t('期限')} ${new Date(task.deadline).toLocaleString(document.documentElement.lang, {hour12: false})}` : '')}),
      task.description ? el('p', {className: 'description', textContent: task.description}) : null,
      el('div', {className: 'task-recs'}),
      buttons.length ? el('div', {className: 'task-actions'}, ...(needs ? [inputs.reason] : []),
                          ...(task.allowed_actions.includes('extend') ? [inputs.hours] : []), ...buttons) : null,
      el('h3', {textContent: t('时间线')}), timeline].filter(Boolean));
    renderRecs(task);
  }

  function deselect() {
    ui.selected = null; ui.detail = null; ui.recs = [];
    detail.hidden = true;
    map.getSource('task-recs').setData(EMPTY);
    highlight();
  }

  // ---- creating a task: a click on the map (or a hotspot), or `n` at the map's centre
  const marker = {type: 'FeatureCollection', features: []};
  map.addSource('task-new', {type: 'geojson', data: marker});
  map.addLayer({id: 'task-new', type: 'circle', source: 'task-new',
    paint: {'circle-radius': 8, 'circle-color': '#f59e0b', 'circle-stroke-color': '#111827', 'circle-stroke-width': 2}});

  function saveDraft() {
    if (createBox.hidden) { sessionStorage.removeItem(DRAFT_KEY); return; }
    const form = createBox.elements;
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify({lon: ui.draft.lon, lat: ui.draft.lat, key: ui.draft.key,
      category: form.category.value, source: form.source.value, description: form.description.value}));
  }
  onExpired(saveDraft);

  function openCreate(lon, lat, values = {}) {
    ui.draft = {lon, lat, key: values.key || (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`)};
    marker.features = [{type: 'Feature', properties: {}, geometry: {type: 'Point', coordinates: [lon, lat]}}];
    map.getSource('task-new').setData(marker);
    const category = el('select', {name: 'category', required: true},
      ...ui.categories.map((c) => el('option', {value: c.code, textContent: `${c.major_name} · ${c.name}`})));
    const source = el('select', {name: 'source'}, ...SOURCES.map(([value, label]) => el('option', {value, textContent: t(label)})));
    const description = el('textarea', {name: 'description', rows: 3, maxLength: 2000, placeholder: t('问题描述')});
    if (values.category) category.value = values.category;
    if (values.source) source.value = values.source;
    if (values.description) description.value = values.description;
    createBox.replaceChildren(el('h3', {textContent: t('新建任务')}),
      el('p', {className: 'meta', textContent: `${lon.toFixed(5)}, ${lat.toFixed(5)}`}),
      el('label', {}, t('类别'), category), el('label', {}, t('来源'), source), el('label', {}, t('描述'), description),
      el('div', {className: 'task-actions'}, el('button', {type: 'submit', className: 'primary', textContent: t('提交')}),
        el('button', {type: 'button', textContent: t('取消'), onclick: closeCreate})));
    createBox.hidden = false;
    saveDraft();
  }
  function closeCreate() {
    createBox.hidden = true;
    marker.features = [];
    map.getSource('task-new').setData(marker);
    sessionStorage.removeItem(DRAFT_KEY);
  }
  createBox.addEventListener('input', saveDraft);
  createBox.addEventListener('change', saveDraft);
  createBox.addEventListener('submit', async (event) => {
    event.preventDefault();
    saveDraft();
    const form = createBox.elements;
    const body = {lon: ui.draft.lon, lat: ui.draft.lat, category: form.category.value, source: form.source.value,
                  description: form.description.value.trim()};
    const task = await guarded(() => api('POST', '/api/tasks', {body, headers: {'Idempotency-Key': ui.draft.key}}));
    if (!task) return;
    closeCreate();
    live.keep(task);
    refreshListSoon();
    ui.lastClickAt = performance.now();
    await select(task.id);
  });

  const POINT_LAYERS = ['task', 'live-officer', 'live-vehicle', 'live-cluster', 'camera', 'camera-cluster', 'hotspot-cluster', 'task-rec-unit'];
  map.on('click', (event) => {
    const layers = POINT_LAYERS.filter((id) => map.getLayer(id));
    const near = map.queryRenderedFeatures([[event.point.x - 5, event.point.y - 5], [event.point.x + 5, event.point.y + 5]], {layers});
    const task = near.find((f) => f.layer.id === 'task');
    if (task) { ui.lastClickAt = event.originalEvent.timeStamp; ui.recsDrawnAt = null; select(task.properties.id); return; }
    if (near.length) return;  // a unit or a camera: its popup
    const hotspot = map.queryRenderedFeatures(event.point, {layers: ['hotspot'].filter((id) => map.getLayer(id))})[0];
    const at = hotspot ? hotspot.geometry.coordinates : [event.lngLat.lng, event.lngLat.lat];
    openCreate(at[0], at[1]);
  });
  map.on('mouseenter', 'task', () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', 'task', () => { map.getCanvas().style.cursor = ''; });

  shortcuts.push(
    {keys: ['n'], help: '在地图中心新建任务', run: () => { const c = map.getCenter(); openCreate(c.lng, c.lat); createBox.elements.category.focus(); }},
    {keys: ['a'], help: '派遣给第一推荐单位', run: () => { if (ui.recs[0]) assign(ui.recs[0], ''); }},
    {keys: ['j'], help: '下一个任务', run: () => step(1)},
    {keys: ['k'], help: '上一个任务', run: () => step(-1)},
  );
  function step(delta) {
    const rows = [...list.querySelectorAll('li')];
    const at = rows.findIndex((row) => row.dataset.task === String(ui.selected));
    const next = rows[Math.max(0, Math.min(rows.length - 1, at + delta))];
    if (next) select(Number(next.dataset.task), {fly: true});
  }

  async function start() {
    const body = await guarded(() => api('GET', '/api/categories'));
    ui.categories = body ? body.items : [];
    categorySelect.append(...ui.categories.map((c) => el('option', {value: c.code, textContent: c.name})));
    const draft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || 'null');
    if (draft && Number.isFinite(draft.lon) && Number.isFinite(draft.lat)) openCreate(draft.lon, draft.lat, draft);
    await refreshList();
  }
  start().catch((error) => showError(error));
  return {live, select, openCreate, deselect};
}
