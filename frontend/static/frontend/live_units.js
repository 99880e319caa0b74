/* Live officers and vehicles on the one map, from /ws/map (realtime/README.md): a snapshot of
   every unit this user may see, then numbered frames (at most 4 a second) with the units that
   moved, entered the view or went stale, and the ones that left. A dropped connection resumes
   from the last frame applied (no gap), or takes a new snapshot when the server says so.
   Until the first snapshot the map shows the units from the "live" vector tiles; after it, from
   here (those tile layers are hidden). Stale units (no fix for a while) are drawn as hollow rings. */
'use strict';

(function () {
  const map = window.oneMap;
  const live = {
    state: 'connecting',  // connecting | live | reconnecting
    units: new Map(),     // key -> unit record, exactly as the server sent it
    stream: null,
    seq: null,
    lastFrameAt: null,
  };
  window.oneMapLive = live;  // for the browser tests and for a look from the console

  const status = document.getElementById('live-status');
  const EMPTY = {type: 'FeatureCollection', features: []};
  let renderQueued = false;
  let retryMs = 1000;

  function showStatus() {
    if (!status) return;
    const labels = {connecting: '连接中 connecting', live: '实时 live', reconnecting: '重连中 reconnecting'};
    const stale = [...live.units.values()].filter((u) => u.stale).length;
    status.textContent = `${labels[live.state]} · ${live.units.size} 单位 units` +
      (stale ? ` · ${stale} 失联 stale` : '');
    status.dataset.state = live.state;
  }

  function features() {
    const out = [];
    for (const unit of live.units.values()) {
      out.push({
        type: 'Feature',
        geometry: {type: 'Point', coordinates: [unit.lon, unit.lat]},
        properties: {key: unit.key, kind: unit.kind, call_sign: unit.call_sign, label: unit.label,
                     stale: unit.stale, at: unit.at, heading: unit.heading},
      });
    }
    return {type: 'FeatureCollection', features: out};
  }

  function render() {  // at most once per animation frame, however many frames arrived
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(function () {
      renderQueued = false;
      const source = map.getSource('live-units');
      if (source) source.setData(features());
      showStatus();
    });
  }

  function addLayers() {
    map.addSource('live-units', {type: 'geojson', data: EMPTY});
    const before = map.getLayer('district-label') ? 'district-label' : undefined;
    // Fresh units are filled in their colour; stale ones are hollow rings, so a glance at the wall
    // tells who is reporting.
    const fill = (fresh) => ['case', ['get', 'stale'], '#ffffff', fresh];
    const ring = (fresh) => ['case', ['get', 'stale'], fresh, '#ffffff'];
    map.addLayer({id: 'live-vehicle', type: 'circle', source: 'live-units',
      filter: ['==', ['get', 'kind'], 'vehicle'],
      paint: {'circle-radius': 4.5, 'circle-color': fill('#2e8540'),
              'circle-stroke-color': ring('#2e8540'), 'circle-stroke-width': 1.2}}, before);
    map.addLayer({id: 'live-officer', type: 'circle', source: 'live-units',
      filter: ['==', ['get', 'kind'], 'officer'],
      paint: {'circle-radius': 3.5, 'circle-color': fill('#6a3d9a'),
              'circle-stroke-color': ring('#6a3d9a'), 'circle-stroke-width': 1.2}}, before);
  }

  function hideTileUnits() {
    for (const id of ['officer', 'vehicle']) {
      if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', 'none');
    }
  }

  function onSnapshot(message) {
    live.units = new Map(message.units.map((u) => [u.key, u]));
    live.stream = message.stream;
    live.seq = message.seq;
    live.state = 'live';
    retryMs = 1000;
    hideTileUnits();
    render();
  }

  function onFrame(message, socket) {
    if (message.stream !== live.stream || message.seq !== live.seq + 1) {
      socket.close();  // out of step (never expected): reconnect and let the server decide
      return;
    }
    for (const unit of message.units) live.units.set(unit.key, unit);
    for (const key of message.removed) live.units.delete(key);
    live.seq = message.seq;
    live.lastFrameAt = Date.now();
    render();
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws/map`);
    socket.onopen = function () {
      const request = {type: 'subscribe'};
      if (live.stream !== null) request.resume = {stream: live.stream, seq: live.seq};
      socket.send(JSON.stringify(request));
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type === 'snapshot') onSnapshot(message);
      else if (message.type === 'frame') onFrame(message, socket);
      else if (message.type === 'resumed') { live.state = 'live'; retryMs = 1000; showStatus(); }
      else if (message.type === 'resync') { live.stream = null; }  // a new snapshot follows
      else if (message.type === 'error') console.warn('one map live:', message.error, message.detail);
    };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4403) {  // logged out, or no jurisdiction
        live.state = 'reconnecting';
        showStatus();
        return;
      }
      live.state = 'reconnecting';
      showStatus();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    };
  }

  function start() {
    addLayers();
    showStatus();
    connect();
  }
  if (map.loaded()) start(); else map.once('load', start);
}());
