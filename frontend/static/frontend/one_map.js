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
}());
