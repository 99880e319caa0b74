/* The one-map placeholder: district boundaries from our own API on a plain background.
   No basemap tiles, no glyph server, no sprite: nothing leaves our server. */
/* global maplibregl */
'use strict';

(function () {
  const config = JSON.parse(document.getElementById('map-config').textContent);
  // Without a `glyphs` URL, MapLibre (>= 5.11) draws every label with the browser's own fonts;
  // text-font then names CSS font families, tried in order.
  const labelFont = ['Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', 'sans-serif'];

  const style = {
    version: 8,
    sources: {
      districts: {type: 'geojson', data: config.districtsUrl, promoteId: 'code'},
      districtLabels: {type: 'geojson', data: config.labelsUrl},
    },
    layers: [
      {id: 'background', type: 'background', paint: {'background-color': '#eef1f4'}},
      {
        id: 'district-fill', type: 'fill', source: 'districts',
        paint: {
          'fill-color': ['case', ['==', ['get', 'code'], config.highlightDistrict || ''], '#c9dcf2', '#ffffff'],
          'fill-opacity': 0.9,
        },
      },
      {
        id: 'district-outline', type: 'line', source: 'districts',
        paint: {'line-color': '#5b7083', 'line-width': ['interpolate', ['linear'], ['zoom'], 8, 0.8, 12, 2]},
      },
      {
        id: 'district-label', type: 'symbol', source: 'districtLabels',
        layout: {
          'text-field': ['get', 'name'],
          'text-font': labelFont,
          'text-size': ['interpolate', ['linear'], ['zoom'], 8, 12, 12, 18],
        },
        paint: {'text-color': '#23313f', 'text-halo-color': '#ffffff', 'text-halo-width': 1.5},
      },
    ],
  };

  const map = new maplibregl.Map({
    container: 'map',
    style: style,
    bounds: config.bbox,
    fitBoundsOptions: {padding: 24},
    // Chinese characters are drawn locally too (this is also MapLibre's default).
    localIdeographFontFamily: labelFont.join(', '),
    attributionControl: false,
  });
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), 'top-right');
  map.addControl(new maplibregl.ScaleControl({unit: 'metric'}), 'bottom-left');
}());
