/* The officer's own tasks on the phone: the list (GET /api/tasks as the officer: only tasks
   assigned to the officer's unit), distance and bearing from the officer's own position, and
   accept / arrive (with the phone's position) / feedback (a note and photos from the camera),
   each through the offline queue (task_queue.js) so that nothing taken offline is lost or sent
   twice. Task pushes refresh the list and bring the task to the top. */
import {t} from './i18n.js';
import {ACTION_LABELS, STATE_COLOURS, STATE_LABELS, api, compass, distanceBearing, distanceText, el} from './task_api.js';
import {TaskQueue, photoDataUrl} from './task_queue.js';

const OPEN_STATES = 'dispatched,accepted,on_site,handled';
// The officer's next step in each state (the server's table decides; this picks the button).
const NEXT = {dispatched: 'accept', accepted: 'arrive', on_site: 'feedback'};
const NEXT_STATE = {accept: 'accepted', arrive: 'on_site', feedback: 'handled'};
const EMPTY = {type: 'FeatureCollection', features: []};

export function installFieldTasks(field, link) {
  const box = document.getElementById('field-tasks');
  box.hidden = false;
  const state = {tasks: [], highlighted: null, map: null, error: null};
  field.tasks = state;
  const queue = new TaskQueue(link, {
    onDone(item, task) { if (task) merge(task); refresh().catch(() => {}); },
    onFailed(item, error) { showError(error); refresh().catch(() => {}); },
    onChange() { render(); },
  });
  link.setOutbox(queue);
  field.queue = queue;

  function showError(error) {
    state.error = error ? error.message : null;
    render();
  }

  function merge(task) {
    const at = state.tasks.findIndex((x) => x.id === task.id);
    if (at >= 0 && state.tasks[at].version <= task.version) state.tasks[at] = task;
    render();
  }

  async function refresh() {
    const body = await api('GET', `/api/tasks?state=${OPEN_STATES}&limit=50`);
    state.tasks = body.items;
    state.error = null;
    render();
  }

  function act(task, action, extra = {}) {
    const body = {...extra.body};
    if (action === 'arrive' || action === 'accept') {
      if (field.position) { body.lon = field.position[0]; body.lat = field.position[1]; }
    }
    link.send({type: 'task_action', task: task.id, action, version: task.version, fromState: task.state,
               body, photos: extra.photos || []});
  }

  function card(task) {
    const queued = queue.pending(task.id);
    const shownState = queued.length ? NEXT_STATE[queued[queued.length - 1].action] : task.state;
    const where = field.position ? distanceBearing(field.position, [task.lon, task.lat]) : null;
    const next = queued.length ? null : NEXT[task.state];
    const row = el('li', {className: `field-task${state.highlighted === task.id ? ' highlighted' : ''}`,
                          dataset: {task: String(task.id), state: shownState, queued: String(queued.length)}},
      el('div', {className: 'head'},
        el('span', {className: 'dot', style: `background:${STATE_COLOURS[shownState] || '#999'}`}),
        el('strong', {textContent: task.number}), ' ',
        el('span', {className: 'state', textContent: t(STATE_LABELS[shownState] || shownState)}),
        queued.length ? el('span', {className: 'queued', textContent: t('待发送')}) : null,
        task.overdue ? el('span', {className: 'overdue', textContent: t('超期')}) : null),
      el('p', {className: 'meta', textContent: `${task.category_name}${task.address ? ` · ${task.address}` : ''}`}),
      task.description ? el('p', {className: 'description', textContent: task.description}) : null,
      where ? el('p', {className: 'distance', dataset: {distance: String(Math.round(where.distance))},
                       textContent: `${distanceText(where.distance)} · ${compass(where.bearing)} ${Math.round(where.bearing)}°`}) : null,
      task.deadline ? el('p', {className: 'deadline', textContent: `${t('期限')} ${new Date(task.deadline).toLocaleString(document.documentElement.lang, {hour12: false})}`}) : null);
    if (next === 'feedback') row.append(feedbackForm(task));
    else if (next) row.append(el('button', {type: 'button', className: `task-action primary`, dataset: {action: next},
                                            textContent: t(ACTION_LABELS[next]), onclick: () => act(task, next)}));
    row.append(el('button', {type: 'button', className: 'show-on-map', textContent: t('地图'),
                             onclick: () => state.map && state.map.flyTo({center: [task.lon, task.lat], zoom: 16})}));
    return row;
  }

  // Kept across renders (a fix or a queue change redraws the list): the note and the photos stay.
  const forms = new Map();
  function feedbackForm(task) {
    if (!forms.has(task.id)) forms.set(task.id, buildFeedbackForm(task));
    return forms.get(task.id);
  }
  function buildFeedbackForm(task) {
    const note = el('textarea', {name: 'note', rows: 2, maxLength: 2000, placeholder: t('处置情况')});
    const camera = el('input', {type: 'file', name: 'photos', accept: 'image/*', capture: 'environment', multiple: true});
    camera.setAttribute('capture', 'environment');
    const form = el('form', {className: 'feedback'}, note, el('label', {className: 'camera'}, t('拍照'), camera),
      el('button', {type: 'submit', className: 'task-action primary', dataset: {action: 'feedback'}, textContent: t('处置反馈')}));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const photos = await Promise.all([...camera.files].slice(0, 6).map((file) => photoDataUrl(file)));
        const current = state.tasks.find((x) => x.id === task.id) || task;
        act(current, 'feedback', {body: {note: note.value.trim()}, photos});
        forms.delete(task.id);
      } catch (error) { showError(error); }
    });
    return form;
  }

  function render() {
    const list = el('ul', {className: 'field-task-list', id: 'field-task-list'}, ...state.tasks.map(card));
    box.replaceChildren(...[el('h2', {textContent: `${t('我的任务')} (${state.tasks.length})`}),
      state.error ? el('p', {className: 'task-error', role: 'alert', textContent: state.error}) : null, list].filter(Boolean));
    if (state.map && state.map.getSource('my-tasks')) {
      state.map.getSource('my-tasks').setData({type: 'FeatureCollection', features: state.tasks.map((task) => ({
        type: 'Feature', properties: {state: task.state, id: task.id}, geometry: {type: 'Point', coordinates: [task.lon, task.lat]}}))});
    }
  }

  return {
    refresh: () => refresh().catch(showError),
    render,
    addLayer(map) {
      state.map = map;
      map.addSource('my-tasks', {type: 'geojson', data: EMPTY});
      map.addLayer({id: 'my-task', type: 'circle', source: 'my-tasks',
        paint: {'circle-radius': 8, 'circle-color': ['match', ['get', 'state'], ...Object.entries(STATE_COLOURS).flat(), '#2563eb'],
                'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2}}, 'me-accuracy');
      render();
    },
    onPush(message) {
      const payload = message.payload || {};
      state.highlighted = payload.task_id;
      refresh().then(() => {
        const task = state.tasks.find((x) => x.id === payload.task_id);
        if (task && state.map) state.map.flyTo({center: [task.lon, task.lat], zoom: 16});
      }).catch(showError);
    },
    onPosition() {  // the distances only: a redraw per fix would be wasted
      for (const element of box.querySelectorAll('.field-task')) {
        const task = state.tasks.find((x) => String(x.id) === element.dataset.task);
        const target = element.querySelector('.distance');
        if (!task || !field.position) continue;
        const where = distanceBearing(field.position, [task.lon, task.lat]);
        const text = `${distanceText(where.distance)} · ${compass(where.bearing)} ${Math.round(where.bearing)}°`;
        if (target) { target.textContent = text; target.dataset.distance = String(Math.round(where.distance)); } else render();
      }
    },
  };
}

/** A task push as a card's title and text. */
export function taskPushText(payload) {
  const why = {assigned: '新派遣任务', rework: '返工任务', reminder: '任务即将到期'}[payload.why] || '任务推送';
  return {title: `${t(why)} ${payload.number || ''}`.trim(),
          detail: [payload.category, payload.description].filter(Boolean).join(' · ')};
}
