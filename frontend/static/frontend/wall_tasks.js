/* The wall's task panels: closure and on-time rates of today against the same weekday last week
   (/api/kpis, one call per day), open and overdue counts from the /ws/map tasks layer, a live feed
   of new, escalated and overdue tasks, and (with ?tour=overdue) a timed tour of the overdue tasks,
   timed by the clock so every screen of a tiled wall moves together. */
import {t} from './i18n.js';
import {startTasks} from './tasks_live.js';
import {tileCamera} from './wall_view.js';

const FEED_LENGTH = 8;
const FEED_ACTIONS = {create: ['新任务', 'info'], escalate: ['升级', 'warn'], overdue: ['超期', 'alert']};
const KPI_REFRESH_MS = 5 * 60_000;
const TOUR_DWELL_S = 15;

function beijingDate(offsetDays = 0) {
  const day = new Date(Date.now() + offsetDays * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', {timeZone: 'Asia/Shanghai'}).format(day);  // YYYY-MM-DD
}

function percent(rate) { return rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`; }

async function kpisOf(day) {
  const response = await fetch(`/api/kpis?start=${day}&end=${day}&level=district`, {credentials: 'same-origin'});
  if (!response.ok) throw new Error(`kpis ${response.status}`);
  return (await response.json()).total;
}

export function startWallTasks(map, {tile, tour}) {
  const wall = window.oneMapWall;
  const state = {rates: null, feed: [], live: null};
  wall.tasks = state;

  function render() {
    const counts = state.live ? state.live.counts() : {open: null, overdue: null};
    const items = [
      {id: 'tasks-open', label: t('在办任务'), value: counts.open ?? '–'},
      {id: 'tasks-overdue', label: t('超期任务'), value: counts.overdue ?? '–'},
    ];
    if (state.rates) {
      const [today, lastWeek] = state.rates;
      items.push({id: 'closure-rate', label: t('结案率'), value: percent(today.closure_rate),
                  detail: `${t('上周同日')} ${percent(lastWeek.closure_rate)}`});
      items.push({id: 'on-time-rate', label: t('按期结案率'), value: percent(today.on_time_rate),
                  detail: `${t('上周同日')} ${percent(lastWeek.on_time_rate)}`});
    }
    wall.setTaskKpis(items);
  }

  async function refreshRates() {
    state.rates = await Promise.all([kpisOf(beijingDate()), kpisOf(beijingDate(-7))]);
    render();
  }

  function onEvent(message) {
    const what = FEED_ACTIONS[message.action];
    if (!what) return;
    const task = message.task;
    const at = (message.event && message.event.at) || new Date().toISOString();
    const time = new Date(at).toLocaleTimeString(document.documentElement.lang, {hour12: false, hour: '2-digit', minute: '2-digit'});
    const place = task.address || '';
    state.feed = [{id: `${task.id}-${message.action}-${task.version}`, at, tone: what[1],
                   text: `${time} ${t(what[0])} ${task.number} ${task.category_name}${place ? ` · ${place}` : ''}`},
                  ...state.feed.filter((item) => item.id !== `${task.id}-${message.action}-${task.version}`)].slice(0, FEED_LENGTH);
    wall.setTaskFeed(state.feed);
  }

  state.live = startTasks({onChange: render, onEvent});
  render();
  refreshRates().catch((error) => console.warn('wall kpis:', error));
  setInterval(() => refreshRates().catch(() => {}), KPI_REFRESH_MS);

  if (tour) {  // the overdue tasks in turn, the oldest first; the index comes from the clock
    let shown = null;
    setInterval(function () {
      const overdue = state.live.open().filter((task) => task.overdue).sort((a, b) => a.id - b.id);
      if (!overdue.length) return;
      const task = overdue[Math.floor(Date.now() / 1000 / TOUR_DWELL_S) % overdue.length];
      if (task.id === shown) return;
      shown = task.id;
      const d = 0.004;
      const canvas = map.getContainer();
      map.flyTo({...tileCamera([task.lon - d, task.lat - d, task.lon + d, task.lat + d], tile, canvas.clientWidth, canvas.clientHeight),
                 duration: 3000, essential: true});
      const label = document.getElementById('tour-status');
      if (label) label.textContent = `${t('超期巡览')} · ${task.number} ${task.category_name}`;
    }, 1000);
  }
  return state;
}
