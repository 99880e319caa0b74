/* The one map: every layer from OneMap's own vector tiles (/tiles/style.json, built per user with
   signed, versioned tile URLs). No basemap from elsewhere, no glyph server, no sprite: nothing
   leaves our server; labels are drawn with the browser's own fonts. */
/* global maplibregl */
'use strict';

(function () {
  const config = JSON.parse(document.getElementById('map-config').textContent);
  const labelFont = ['Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', 'sans-serif'];

  const map = new maplibregl.Map({
    container: 'map',
    style: config.styleUrl,
    bounds: config.bbox,
    fitBoundsOptions: {padding: 24},
    // Chinese characters are drawn locally too (this is also MapLibre's default).
    localIdeographFontFamily: labelFont.join(', '),
    attributionControl: false,
  });
  window.oneMap = map;  // for the browser tests and for a look from the console
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), 'top-right');
  map.addControl(new maplibregl.ScaleControl({unit: 'metric'}), 'bottom-left');

  // Tile URLs name the data version, so the browser may keep tiles for good. To show edits
  // (a new hotspot, a closed one) without a reload, ask for the current URLs now and then and
  // switch a source only when its URL changed; live layers refresh on their own short max-age.
  async function refreshTileUrls() {
    const response = await fetch(config.styleUrl, {credentials: 'same-origin'});
    if (!response.ok) return;
    const fresh = await response.json();
    for (const [id, source] of Object.entries(fresh.sources)) {
      const current = map.getSource(id);
      if (source.type === 'vector' && current && current.tiles &&
          current.tiles[0] !== source.tiles[0]) {
        current.setTiles(source.tiles);
      }
    }
  }
  map.on('load', function () {
    setInterval(function () { refreshTileUrls().catch(function () {}); },
      (config.styleRefreshSeconds || 30) * 1000);
  });

  // A click on a camera or a hotspot: its record from the OGC API, in a popup. Tiles carry only
  // what the map draws (tiles/registry.py); the rest is one request away. Text only (textContent):
  // names come from the data, never as HTML.
  const DETAILS = {
    camera: {collection: 'cameras', title: 'name',
             fields: [['code', '编号'], ['source', '来源'], ['status', '状态'], ['owner_unit', '权属单位'],
                      ['district', '区']]},
    hotspot: {collection: 'hotspots', title: 'name',
              fields: [['category', '类别'], ['status', '状态'], ['district', '区'], ['street', '街道']]},
  };
  const popup = new maplibregl.Popup({closeButton: true, maxWidth: '320px'});

  function detailsElement(spec, properties) {
    const box = document.createElement('div');
    box.className = 'feature-details';
    const title = document.createElement('h3');
    title.textContent = properties[spec.title] || '';
    box.appendChild(title);
    const list = document.createElement('dl');
    for (const [key, label] of spec.fields) {
      if (properties[key] === undefined || properties[key] === null) continue;
      const term = document.createElement('dt');
      term.textContent = label;
      const value = document.createElement('dd');
      const labels = (config.valueLabels[spec.collection] || {})[key] || {};
      value.textContent = labels[properties[key]] || String(properties[key]);
      value.dataset.field = key;
      value.dataset.value = String(properties[key]);
      list.append(term, value);
    }
    box.appendChild(list);
    return box;
  }

  async function showDetails(spec, feature, lngLat) {
    const url = config.featureUrl.replace('{collection}', spec.collection)
      .replace('{id}', encodeURIComponent(feature.id));
    const response = await fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/geo+json'}});
    if (!response.ok) return;
    const record = await response.json();
    popup.setLngLat(lngLat).setDOMContent(detailsElement(spec, record.properties)).addTo(map);
  }

  for (const [layer, spec] of Object.entries(DETAILS)) {
    map.on('click', layer, function (event) {
      const feature = event.features && event.features[0];
      if (feature && feature.id !== undefined) showDetails(spec, feature, event.lngLat).catch(function () {});
    });
    map.on('mouseenter', layer, function () { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', layer, function () { map.getCanvas().style.cursor = ''; });
  }
}());
