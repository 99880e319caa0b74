/* The basemap is made only of our own layers: districts, streets and grid cells from the tiles,
   and their names. Street and community names come as label points (one per division, inside
   it) from /api/map/labels.geojson; a grid cell's code is drawn on the cell at street zoom. The
   layer groups below are what the console's switcher lists (and what a later layer, such as
   tasks, registers itself into). */
import {palette} from './theme.js';

// A CSS font-family list: with no `glyphs` in the style, MapLibre draws every glyph locally.
export const LABEL_FONT = ['Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', 'sans-serif'];
// Community names are fetched for the view only (7,500 city-wide), from this zoom.
const COMMUNITY_MINZOOM = 13;
const EMPTY = {type: 'FeatureCollection', features: []};

/** Add the label sources and layers to a style (version 8 JSON) before the map is built. */
export function addLabelLayers(style, config) {
  const colours = palette(config.theme);
  style.sources['street-labels'] = {type: 'geojson', data: `${config.labelsUrl}?level=street`};
  style.sources['community-labels'] = {type: 'geojson', data: EMPTY};
  const halo = {'text-halo-color': colours.labelHalo, 'text-halo-width': 1.2};
  const layers = [
    {id: 'gridcell-label', type: 'symbol', source: 'onemap', 'source-layer': 'gridcells', minzoom: 15.5,
     layout: {'text-field': ['get', 'code'], 'text-font': LABEL_FONT, 'text-size': 10, 'symbol-placement': 'point'},
     paint: {'text-color': colours.gridLabelText, ...halo}},
    {id: 'community-label', type: 'symbol', source: 'community-labels', minzoom: COMMUNITY_MINZOOM,
     layout: {'text-field': ['get', 'name'], 'text-font': LABEL_FONT, 'text-size': 11},
     paint: {'text-color': colours.minorLabelText, ...halo}},
    {id: 'street-label', type: 'symbol', source: 'street-labels', minzoom: 11,
     layout: {'text-field': ['get', 'name'], 'text-font': LABEL_FONT,
              'text-size': ['interpolate', ['linear'], ['zoom'], 11, 11, 15, 15]},
     paint: {'text-color': colours.labelText, ...halo}},
  ];
  // Under the points (cameras, hotspots, units stay clickable above the names).
  const at = style.layers.findIndex((layer) => layer.type === 'circle');
  style.layers.splice(at < 0 ? style.layers.length : at, 0, ...layers);
  return style;
}

/** Keep the community labels to the view, at street zoom. */
export function followCommunityLabels(map, config) {
  let last = '';
  async function update() {
    if (map.getZoom() < COMMUNITY_MINZOOM) return;
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(4)).join(',');
    if (bbox === last) return;
    last = bbox;
    const response = await fetch(`${config.labelsUrl}?level=community&bbox=${bbox}`, {credentials: 'same-origin'});
    if (response.ok && bbox === last) map.getSource('community-labels').setData(await response.json());
  }
  map.on('moveend', () => { update().catch(() => {}); });
  update().catch(() => {});
}

/* What the console's layer switcher lists, in order. `layers`: the style's layer ids the group
   shows and hides; `kind`: a live unit kind (filtered in the live source, so clusters count only
   what is shown); `count(summary, live)`: the number beside it. */
export const LAYER_GROUPS = [
  {id: 'districts', label: '区', swatch: '#5b7083', layers: ['district-fill', 'district-line', 'district-label'],
   count: (s) => s && s.districts},
  {id: 'streets', label: '街道', swatch: '#8ea0b1', layers: ['street-line', 'street-label'], count: (s) => s && s.streets},
  {id: 'communities', label: '社区', swatch: '#a9b6c2', layers: ['community-label'], count: () => null},
  {id: 'gridcells', label: '网格', swatch: '#c3ccd5', layers: ['gridcell-line', 'gridcell-label'],
   count: (s) => s && s.gridcells},
  {id: 'hotspots', label: '挂账点位', swatch: '#d64545', layers: ['hotspot-cluster', 'hotspot'],
   count: (s) => s && `${s.hotspots.open}/${s.hotspots.total}`},
  {id: 'cameras', label: '探头', swatch: '#2f6fb0', layers: ['camera-cluster', 'camera'],
   count: (s) => s && `${s.cameras.online}/${s.cameras.total}`},
  {id: 'officers', label: '执法队员', swatch: '#6a3d9a', layers: ['officer'], kind: 'officer',
   count: (s, live) => live.count('officer')},
  {id: 'vehicles', label: '车辆', swatch: '#2e8540', layers: ['vehicle'], kind: 'vehicle',
   count: (s, live) => live.count('vehicle')},
  // 'tasks' is registered by the dispatch screens (registerLayerGroup) when they are added.
];

/** Add a group (e.g. {id: 'tasks', label: '任务', layers: [...], count}) before `before`, or last. */
export function registerLayerGroup(group, before) {
  const at = LAYER_GROUPS.findIndex((g) => g.id === before);
  LAYER_GROUPS.splice(at < 0 ? LAYER_GROUPS.length : at, 0, group);
}
