/* Where the wall looks. One view (an extent) may span several screens: `?tile=C x R / COLS x ROWS`
   (e.g. ?tile=1x0/3x2: the middle screen of the top row of a 3×2 wall; columns and rows count
   from 0). Every screen computes the camera of its own part of the shared view, at the same zoom,
   so the screens join edge to edge; and every screen derives the tour's current stop from the
   clock, so they move together without talking to each other. */
/* global maplibregl */

const TILE_RE = /^(\d+)x(\d+)\/(\d+)x(\d+)$/;
const MAX_SCREENS_PER_SIDE = 8;
const TILE_SIZE = 512;  // MapLibre's world is 512 px wide at zoom 0

/** {col, row, cols, rows} from ?tile=, or the single screen; null when malformed. */
export function parseTile(value) {
  if (!value) return {col: 0, row: 0, cols: 1, rows: 1};
  const match = TILE_RE.exec(value.trim());
  if (!match) return null;
  const [col, row, cols, rows] = match.slice(1).map(Number);
  if (cols < 1 || rows < 1 || cols > MAX_SCREENS_PER_SIDE || rows > MAX_SCREENS_PER_SIDE || col >= cols || row >= rows) return null;
  return {col, row, cols, rows};
}

/** The camera of this screen's part of `bbox` fitted to the whole wall (each screen width × height). */
export function tileCamera(bbox, tile, width, height, padding = 24) {
  const sw = maplibregl.MercatorCoordinate.fromLngLat([bbox[0], bbox[1]]);
  const ne = maplibregl.MercatorCoordinate.fromLngLat([bbox[2], bbox[3]]);
  const wallWidth = width * tile.cols, wallHeight = height * tile.rows;
  const spanX = Math.max(ne.x - sw.x, 1e-9), spanY = Math.max(sw.y - ne.y, 1e-9);
  const scale = Math.min((wallWidth - 2 * padding) / spanX, (wallHeight - 2 * padding) / spanY);  // px per unit
  const x = (sw.x + ne.x) / 2 + ((tile.col + 0.5) * width - wallWidth / 2) / scale;
  const y = (sw.y + ne.y) / 2 + ((tile.row + 0.5) * height - wallHeight / 2) / scale;
  return {center: new maplibregl.MercatorCoordinate(x, y).toLngLat(), zoom: Math.log2(scale / TILE_SIZE)};
}

/** The tour's stop now: 0 is the whole jurisdiction, then each district in turn. */
export function tourIndex(stops, dwellSeconds, nowMs = Date.now()) {
  return Math.floor(nowMs / 1000 / dwellSeconds) % (stops.length + 1);
}
