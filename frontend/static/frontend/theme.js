/* Palettes of the one map. The style comes from the server (/tiles/style.json, per user: signed
   tile URLs, the user's district highlighted); a mode recolours it here before the map is built,
   so the wall's dark map is the same layers as the console's light one. */

const PALETTES = {
  light: {
    labelText: '#23313f', labelHalo: '#ffffff', minorLabelText: '#4b5d6e', gridLabelText: '#7b8a99',
    cluster: '#6a3d9a', clusterText: '#ffffff', me: '#1a73e8',
  },
  dark: {
    labelText: '#d7e3ef', labelHalo: '#0b1420', minorLabelText: '#9fb3c6', gridLabelText: '#6f849a',
    cluster: '#9b6fd0', clusterText: '#ffffff', me: '#4ea1ff',
    paint: {
      'background': {'background-color': '#0b1420'},
      'district-fill': {'fill-color': ['case', ['==', ['get', 'code'], '__highlight__'], '#1c3350', '#111d2b'],
                        'fill-opacity': 0.95},
      'gridcell-line': {'line-color': '#1f2f40'},
      'street-line': {'line-color': '#3b5269'},
      'district-line': {'line-color': '#6d8aa6'},
      'camera-cluster': {'circle-color': '#3d8fd6', 'circle-opacity': 0.45},
      'camera': {'circle-stroke-color': ['match', ['get', 'source'], 'self_built', '#9cc9f2', '#0b1420']},
      'hotspot-cluster': {'circle-color': '#ff5c5c'},
      'hotspot': {'circle-stroke-color': '#0b1420'},
      'district-label': {'text-color': '#d7e3ef', 'text-halo-color': '#0b1420'},
    },
  },
};

export function palette(theme) {
  return PALETTES[theme] || PALETTES.light;
}

/** Recolour a style (version 8 JSON) in place for a theme; the light theme is the server's own. */
export function applyTheme(style, theme, highlight) {
  const paints = palette(theme).paint || {};
  for (const layer of style.layers) {
    const paint = paints[layer.id];
    if (!paint) continue;
    const text = JSON.stringify(paint).replaceAll('__highlight__', highlight || '');
    layer.paint = {...(layer.paint || {}), ...JSON.parse(text)};
  }
  return style;
}
