/* The tasks layer of /ws/map, on a socket of its own (subscribed with layers ["tasks"] only, so
   it carries no units): a `tasks` message with the open tasks of the user's scope, then a `task`
   message per change. Messages may cross (an event can overtake the starting list), so the higher
   `version` of a task wins. On reconnect the server sends the open tasks again (task messages
   are not replayed), so a fresh subscribe is the resume. */

const OPEN = new Set(['reported', 'filed', 'dispatched', 'accepted', 'on_site', 'handled', 'verified']);

export function startTasks({onChange, onEvent} = {}) {
  const live = {tasks: new Map(), state: 'connecting', socket: null};
  let retryMs = 1000;

  function keep(task) {
    const known = live.tasks.get(task.id);
    if (known && known.version >= task.version && OPEN.has(task.state)) return false;  // nothing new
    if (OPEN.has(task.state)) live.tasks.set(task.id, task); else live.tasks.delete(task.id);
    return true;
  }
  live.keep = (task) => { if (keep(task) && onChange) onChange(live); };
  live.open = () => [...live.tasks.values()];
  live.counts = () => {
    let open = 0, overdue = 0;
    for (const task of live.tasks.values()) { open += 1; if (task.overdue) overdue += 1; }
    return {open, overdue};
  };

  const HANDLERS = {
    tasks(message) {
      const fresh = new Map();
      for (const task of message.tasks) {
        const known = live.tasks.get(task.id);
        fresh.set(task.id, known && known.version > task.version ? known : task);
      }
      live.tasks = fresh;
      live.state = 'live';
      if (onChange) onChange(live);
    },
    task(message) {
      const applied = keep(message.task);
      if (onEvent) onEvent(message, applied);
      if (applied && onChange) onChange(live);
    },
  };

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws/map`);
    live.socket = socket;
    socket.onopen = () => { retryMs = 1000; socket.send(JSON.stringify({type: 'subscribe', layers: ['tasks']})); };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const handler = HANDLERS[message.type];
      if (handler) handler(message);
    };
    socket.onclose = (event) => {
      live.state = 'reconnecting';
      if (event.code === 4401 || event.code === 4403) return;  // the unit socket sends to the login page
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    };
  }
  connect();
  window.oneMapTasks = live;  // for the browser tests
  return live;
}

/** The tasks as a GeoJSON FeatureCollection for a circle layer. */
export function tasksGeoJson(tasks) {
  return {type: 'FeatureCollection', features: tasks.map((task) => ({
    type: 'Feature', id: task.id,
    properties: {id: task.id, number: task.number, state: task.state, overdue: Boolean(task.overdue),
                 category: task.category, category_name: task.category_name},
    geometry: {type: 'Point', coordinates: [task.lon, task.lat]}}))};
}
