/* Live officers and vehicles, from /ws/map (realtime/README.md): a snapshot of every unit this
   user may see, then numbered frames (at most 4 a second) with the units that moved, entered the
   view or went stale, and the keys that left. A dropped connection resumes from the last frame
   applied (no gap), or takes a new snapshot when the server says so. The server may also say the
   stream is lagging ({"type": "lagging"}) until it has caught up ({"type": "caught_up"}).

   Until the first snapshot the map shows the units of the "live" vector tiles; after it, from
   here (those tile layers are hidden). Units are clustered at low zoom (a GeoJSON source with
   clustering: at city zoom thousands of dots would bury the district names); stale units (no fix
   for a while) are hollow rings and can be hidden; on the wall they fade with the age of their
   last fix. */
import {LABEL_FONT} from './basemap.js';
import {palette} from './theme.js';

const EMPTY = {type: 'FeatureCollection', features: []};
const CLUSTER_MAX_ZOOM = 12;
const COLOURS = {officer: '#6a3d9a', vehicle: '#2e8540'};
// The wall's fade: full opacity for a fresh fix, down to FADE_FLOOR at FADE_SPAN stale periods.
const FADE_FLOOR = 0.2;
const FADE_SPAN = 5;

export function startLive(map, config, hooks = {}) {
  const live = {
    state: 'connecting',  // connecting | live | reconnecting
    lagging: false,
    units: new Map(),     // key -> unit record, exactly as the server sent it
    stream: null,
    seq: null,
    lastFrameAt: null,
    hideStale: false,
    hiddenKinds: new Set(),
    fade: Boolean(hooks.fade),
    count(kind) { return [...this.units.values()].filter((u) => u.kind === kind).length; },
    counts() {
      let fresh = 0, stale = 0;
      for (const u of this.units.values()) { if (u.stale) stale += 1; else fresh += 1; }
      return {fresh, stale, total: fresh + stale};
    },
    setHideStale(hide) { this.hideStale = Boolean(hide); render(); },
    setKindVisible(kind, visible) {
      if (visible) this.hiddenKinds.delete(kind); else this.hiddenKinds.add(kind);
      render();
    },
  };
  window.oneMapLive = live;  // for the browser tests and for a look from the console
  let renderQueued = false;
  let retryMs = 1000;
  const staleAfter = config.staleAfterSeconds || 120;

  function opacity(unit, now) {
    if (!live.fade) return 1;
    const ageS = Math.max(0, now - unit.t);
    return Math.max(FADE_FLOOR, 1 - (1 - FADE_FLOOR) * Math.min(1, ageS / (staleAfter * FADE_SPAN)));
  }

  function features() {
    const out = [];
    const now = Date.now() / 1000;
    for (const unit of live.units.values()) {
      if ((live.hideStale && unit.stale) || live.hiddenKinds.has(unit.kind)) continue;
      out.push({
        type: 'Feature',
        geometry: {type: 'Point', coordinates: [unit.lon, unit.lat]},
        properties: {key: unit.key, kind: unit.kind, call_sign: unit.call_sign, label: unit.label,
                     stale: unit.stale, at: unit.at, heading: unit.heading, opacity: opacity(unit, now)},
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
      if (hooks.onUnits) hooks.onUnits(live);
    });
  }

  function setState(state) {
    live.state = state;
    if (hooks.onState) hooks.onState(live);
  }

  function addLayers() {
    const colours = palette(config.theme);
    map.addSource('live-units', {type: 'geojson', data: EMPTY, cluster: true, clusterMaxZoom: CLUSTER_MAX_ZOOM,
      clusterRadius: 40, clusterProperties: {stale: ['+', ['case', ['get', 'stale'], 1, 0]]}});
    const before = map.getLayer('district-label') ? 'district-label' : undefined;
    const single = (kind) => ['all', ['!', ['has', 'point_count']], ['==', ['get', 'kind'], kind]];
    // Fresh units are filled in their colour; stale ones are hollow rings, so a glance at the wall
    // tells who is reporting.
    const fill = (c) => ['case', ['get', 'stale'], 'rgba(255,255,255,0.15)', c];
    const ring = (c) => ['case', ['get', 'stale'], c, '#ffffff'];
    map.addLayer({id: 'live-cluster', type: 'circle', source: 'live-units', filter: ['has', 'point_count'],
      // A cluster of stale units only is grey: the wall tells at a glance where nobody reports.
      paint: {'circle-color': ['case', ['>=', ['get', 'stale'], ['get', 'point_count']], '#6b7885', colours.cluster],
              'circle-opacity': 0.75,
              'circle-radius': ['interpolate', ['linear'], ['get', 'point_count'], 2, 9, 100, 16, 1000, 26],
              'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1}}, before);
    map.addLayer({id: 'live-cluster-count', type: 'symbol', source: 'live-units', filter: ['has', 'point_count'],
      layout: {'text-field': ['get', 'point_count_abbreviated'], 'text-font': LABEL_FONT, 'text-size': 11,
               'text-allow-overlap': true},
      paint: {'text-color': colours.clusterText}}, before);
    for (const kind of ['vehicle', 'officer']) {
      map.addLayer({id: `live-${kind}`, type: 'circle', source: 'live-units', filter: single(kind),
        paint: {'circle-radius': kind === 'vehicle' ? 5 : 4, 'circle-color': fill(COLOURS[kind]),
                'circle-stroke-color': ring(COLOURS[kind]), 'circle-stroke-width': 1.4,
                'circle-opacity': ['get', 'opacity'], 'circle-stroke-opacity': ['get', 'opacity']}}, before);
    }
    // A click on a cluster zooms in to where it falls apart.
    map.on('click', 'live-cluster', async function (event) {
      const feature = event.features && event.features[0];
      if (!feature) return;
      const zoom = await map.getSource('live-units').getClusterExpansionZoom(feature.properties.cluster_id);
      map.easeTo({center: feature.geometry.coordinates, zoom});
    });
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
    retryMs = 1000;
    hideTileUnits();
    setState('live');
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

  function setLagging(lagging) {
    live.lagging = lagging;
    if (hooks.onState) hooks.onState(live);
  }

  const HANDLERS = {
    snapshot: (m) => onSnapshot(m),
    frame: (m, socket) => onFrame(m, socket),
    resumed: () => { retryMs = 1000; setState('live'); },
    resync: () => { live.stream = null; },  // a new snapshot follows
    lagging: () => setLagging(true),
    caught_up: () => setLagging(false),
    error: (m) => console.warn('one map live:', m.error, m.detail),
  };

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws/map`);
    live.socket = socket;
    socket.onopen = function () {
      const request = {type: 'subscribe'};
      if (live.stream !== null) request.resume = {stream: live.stream, seq: live.seq};
      socket.send(JSON.stringify(request));
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      const handler = HANDLERS[message.type];
      if (handler) handler(message, socket);
    };
    socket.onclose = function (event) {
      if (event.code === 4401) {  // the session expired: log in again, then come back here
        location.assign(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
        return;
      }
      setState('reconnecting');
      if (event.code === 4403) return;  // no jurisdiction: retrying will not help
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    };
  }

  addLayers();
  if (live.fade) setInterval(render, 5000);  // ages grow without frames
  setState('connecting');
  connect();
  return live;
}
