/* The one map, shared by the three modes: every layer from OneMap's own vector tiles
   (/tiles/style.json, built per user with signed, versioned tile URLs) recoloured for the mode,
   plus the names of districts, streets, communities and grid cells. No basemap from elsewhere,
   no glyph server, no sprite: nothing leaves our server; labels are drawn with local fonts. */
/* global maplibregl */
import {LABEL_FONT, addLabelLayers, followCommunityLabels} from './basemap.js';
import {age, t} from './i18n.js';
import {applyTheme} from './theme.js';

export function readConfig() {
  return JSON.parse(document.getElementById('map-config').textContent);
}

async function fetchJson(url) {
  const response = await fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}});
  if (response.status === 401 || response.redirected && response.url.includes('/login/')) {
    location.assign(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

export async function createMap(config, options = {}) {
  const style = addLabelLayers(applyTheme(await fetchJson(config.styleUrl), config.theme, config.highlightDistrict), config);
  const map = new maplibregl.Map({
    container: 'map',
    style,
    bounds: config.bbox,
    fitBoundsOptions: {padding: 24},
    // Chinese characters are drawn locally (the style has no glyphs: so is everything else).
    localIdeographFontFamily: LABEL_FONT.join(', '),
    attributionControl: false,
    ...options,
  });
  window.oneMap = map;  // for the browser tests and for a look from the console
  map.on('load', function () {
    followCommunityLabels(map, config);
    setInterval(function () { refreshTileUrls(map, config).catch(function () {}); },
      (config.styleRefreshSeconds || 30) * 1000);
  });
  return map;
}

/* Tile URLs name the data version, so the browser may keep tiles for good. To show edits (a new
   hotspot, a closed one) without a reload, ask for the current URLs now and then and switch a
   source only when its URL changed; live layers refresh on their own short max-age. */
async function refreshTileUrls(map, config) {
  const fresh = await fetchJson(config.styleUrl);
  for (const [id, source] of Object.entries(fresh.sources)) {
    const current = map.getSource(id);
    if (source.type === 'vector' && current && current.tiles && current.tiles[0] !== source.tiles[0]) {
      current.setTiles(source.tiles);
    }
  }
}

/* Popups. Text only (textContent): names come from the data, never as HTML. Codes are shown as
   names: the model's labels for coded values, the division names for district/street codes. */
function detailsElement(title, rows) {
  const box = document.createElement('div');
  box.className = 'feature-details';
  const heading = document.createElement('h3');
  heading.textContent = title || '';
  box.appendChild(heading);
  const list = document.createElement('dl');
  for (const [key, label, value, raw] of rows) {
    if (value === undefined || value === null || value === '') continue;
    const term = document.createElement('dt');
    term.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    dd.dataset.field = key;
    dd.dataset.value = String(raw === undefined ? value : raw);
    list.append(term, dd);
  }
  box.appendChild(list);
  return box;
}

function nameOf(config, level, code) {
  return (code && config.names[level] && config.names[level][code]) || code;
}

const RECORDS = {
  camera: {collection: 'cameras', title: 'name',
           fields: [['code', '编号'], ['source', '来源'], ['status', '状态'], ['owner_unit', '权属单位'],
                    ['district', '区'], ['street', '街道']]},
  hotspot: {collection: 'hotspots', title: 'name',
            fields: [['category', '类别'], ['status', '状态'], ['district', '区'], ['street', '街道']]},
};

function recordRows(config, spec, properties) {
  return spec.fields.map(([key, label]) => {
    const raw = properties[key];
    let value = raw;
    if (key === 'district') value = nameOf(config, 'districts', raw);
    else if (key === 'street') value = nameOf(config, 'streets', raw);
    else value = ((config.valueLabels[spec.collection] || {})[key] || {})[raw] || raw;
    return [key, t(label), value, raw];
  });
}

export function unitRows(config, unit) {
  return [
    ['call_sign', t('呼号'), unit.call_sign],
    ['district', t('区'), nameOf(config, 'districts', unit.district), unit.district],
    ['street', t('街道'), nameOf(config, 'streets', unit.street), unit.street],
    ['at', t('最后定位'), unit.t ? age(Date.now() / 1000 - unit.t) : null, unit.at],
    ['speed', t('速度'), unit.speed === null || unit.speed === undefined ? null : `${(unit.speed * 3.6).toFixed(0)} km/h`],
    ['state', t('状态'), unit.stale ? t('失联') : t('在岗'), unit.stale ? 'stale' : 'fresh'],
  ];
}

export function installPopups(map, config, live) {
  const popup = new maplibregl.Popup({closeButton: true, maxWidth: '340px'});
  map.oneMapPopup = popup;
  for (const [layer, spec] of Object.entries(RECORDS)) {
    map.on('click', layer, async function (event) {
      const feature = event.features && event.features[0];
      if (!feature || feature.id === undefined) return;
      const url = config.featureUrl.replace('{collection}', spec.collection).replace('{id}', encodeURIComponent(feature.id));
      const record = await fetchJson(url);
      popup.setLngLat(event.lngLat).setDOMContent(
        detailsElement(record.properties[spec.title], recordRows(config, spec, record.properties))).addTo(map);
    });
  }
  for (const layer of ['live-officer', 'live-vehicle']) {
    map.on('click', layer, function (event) {
      const feature = event.features && event.features[0];
      const unit = feature && live && live.units.get(feature.properties.key);
      if (!unit) return;
      popup.setLngLat([unit.lon, unit.lat]).setDOMContent(detailsElement(unit.label, unitRows(config, unit))).addTo(map);
    });
  }
  for (const layer of [...Object.keys(RECORDS), 'live-officer', 'live-vehicle', 'live-cluster']) {
    map.on('mouseenter', layer, function () { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', layer, function () { map.getCanvas().style.cursor = ''; });
  }
  return popup;
}

export function whenLoaded(map) {
  return new Promise((resolve) => { if (map.loaded()) resolve(map); else map.once('load', () => resolve(map)); });
}
