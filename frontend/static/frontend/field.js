/* The officer's phone: the map around the officer, the officer's own position, the browser's
   geolocation reported as fixes through /ws/field while on duty, and pushes arriving live (with
   a vibration and a sound) to acknowledge. The app shell is kept by a service worker
   (/field-sw.js), so the page opens without a network. */
import {t} from './i18n.js';
import {FieldLink} from './field_link.js';
import {installFieldTasks, taskPushText} from './field_tasks.js';
import {createMap, readConfig, whenLoaded} from './map_app.js';
import {palette} from './theme.js';

const config = readConfig();
// A fix at most this often while moving (the server takes more; the battery and the data plan not).
const MIN_FIX_INTERVAL_MS = 5000;
const DUTY_KEY = 'onemap.field.onDuty';
const pushes = new Map();  // id -> {message, element, acked}
const field = {pushes, fixesSent: 0, lastFixResult: null, position: null};
window.oneMapField = field;  // for the browser tests and for a look from the console
let map, link, tasks, watchId = null, lastFixAt = 0;

function status(text) { document.getElementById('field-status').textContent = text; }

function showPosition(lonLat, accuracy) {
  field.position = lonLat;
  if (tasks) tasks.onPosition();
  const source = map && map.getSource('me');
  if (!source) return;
  source.setData({type: 'FeatureCollection', features: [
    {type: 'Feature', properties: {accuracy: accuracy || 0}, geometry: {type: 'Point', coordinates: lonLat}}]});
}

function addOwnPositionLayer() {
  const colour = palette(config.theme).me;
  map.addSource('me', {type: 'geojson', data: {type: 'FeatureCollection', features: []}});
  map.addLayer({id: 'me-accuracy', type: 'circle', source: 'me',
    paint: {'circle-radius': ['interpolate', ['exponential', 2], ['zoom'], 10, ['max', 6, ['/', ['get', 'accuracy'], 150]],
                              18, ['max', 6, ['*', ['get', 'accuracy'], 1.7]]],
            'circle-color': colour, 'circle-opacity': 0.15}});
  map.addLayer({id: 'me', type: 'circle', source: 'me',
    paint: {'circle-radius': 8, 'circle-color': colour, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 3}});
  if (config.officer && config.officer.position) showPosition(config.officer.position, 0);
}

function onPosition(position) {
  const c = position.coords;
  showPosition([c.longitude, c.latitude], c.accuracy);
  const now = Date.now();
  if (now - lastFixAt < MIN_FIX_INTERVAL_MS) return;
  const fix = {time: new Date(position.timestamp || now).toISOString(), lon: c.longitude, lat: c.latitude,
               accuracy: c.accuracy, speed: c.speed, heading: c.heading};
  if (link.send({type: 'fix', ref: `fix-${now}`, fix})) { lastFixAt = now; field.fixesSent += 1; }
}

function setDuty(on) {
  document.getElementById('duty-toggle').checked = on;
  localStorage.setItem(DUTY_KEY, on ? '1' : '0');
  if (on && watchId === null && navigator.geolocation) {
    lastFixAt = 0;
    watchId = navigator.geolocation.watchPosition(onPosition, () => status(t('无法定位')),
      {enableHighAccuracy: true, maximumAge: 10000, timeout: 30000});
  } else if (!on && watchId !== null) {
    navigator.geolocation.clearWatch(watchId);
    watchId = null;
  }
}

function cue() {
  if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
  try {  // a short two-tone beep; browsers allow it once the officer has touched the page
    const audio = new AudioContext();
    const osc = audio.createOscillator();
    osc.frequency.setValueAtTime(880, audio.currentTime);
    osc.frequency.setValueAtTime(660, audio.currentTime + 0.15);
    osc.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.3);
  } catch (error) { /* no audio: the vibration and the card remain */ }
}

function pushTitle(message) {
  const payload = message.payload || {};
  if (message.kind === 'task') return taskPushText(payload).title;
  return payload.title || payload.message || payload.text || (message.kind === 'task' ? t('任务推送') : t('地图推送'));
}

function onPush(message) {
  if (pushes.has(message.id)) return;  // at least once: a redelivery after a reconnect
  const card = document.createElement('li');
  card.className = 'push';
  card.dataset.push = message.id;
  const title = document.createElement('strong'); title.textContent = pushTitle(message);
  const body = document.createElement('p');
  body.textContent = message.kind === 'task' ? taskPushText(message.payload || {}).detail : (message.payload && message.payload.detail) || '';
  card.dataset.kind = message.kind;
  const ack = document.createElement('button'); ack.type = 'button'; ack.className = 'ack'; ack.textContent = t('确认');
  ack.addEventListener('click', () => { if (link.send({type: 'ack', id: message.id})) ack.disabled = true; });
  card.append(title, body, ack);
  document.getElementById('push-list').prepend(card);
  pushes.set(message.id, {message, element: card, acked: false});
  const center = message.payload && message.payload.center;
  if (Array.isArray(center) && center.length === 2 && map) map.flyTo({center, zoom: 16});
  if (message.kind === 'task' && tasks) tasks.onPush(message);
  cue();
}

function onAcked(message) {
  const push = pushes.get(message.id);
  if (!push) return;
  push.acked = true;
  push.element.classList.add('acked');
  const button = push.element.querySelector('.ack');
  button.disabled = true;
  button.textContent = t('已确认');
}

async function start() {
  if ('serviceWorker' in navigator && config.serviceWorker) {
    navigator.serviceWorker.register(config.serviceWorker, {scope: '/field'}).catch(() => {});
  }
  link = new FieldLink(config.fieldSocket, {
    onState(open) {
      document.body.dataset.link = open ? 'open' : 'closed';
      status(open ? t('已连接') : t('已离线'));
      if (open && tasks) tasks.refresh();
    },
    push: onPush,
    acked: onAcked,
    fix_result(message) {
      field.lastFixResult = message;
      status(message.accepted ? t('定位已发送') : t('定位被拒绝'));
    },
    error(message) { console.warn('field link:', message.error, message.detail); },
  });
  field.link = link;
  tasks = installFieldTasks(field, link);  // its queue is the link's outbox, flushed on every connect
  link.connect();
  tasks.refresh();
  document.getElementById('duty-toggle').addEventListener('change', (event) => setDuty(event.target.checked));
  map = await createMap(config, config.officer && config.officer.position ? {center: config.officer.position, zoom: 15, bounds: undefined} : {});
  await whenLoaded(map);
  addOwnPositionLayer();
  tasks.addLayer(map);
  document.getElementById('locate').addEventListener('click', () => field.position && map.flyTo({center: field.position, zoom: 16}));
  if (localStorage.getItem(DUTY_KEY) === '1') setDuty(true);
}

start().catch((error) => console.error(error));
