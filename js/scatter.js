// The map: a WebGL scatter (regl-scatterplot) of every item, coloured by labels.
//
// Data arrive as binary: the coordinates once (the `coords` trait, float32 x,y pairs),
// the label codes in reply to a `ready` message, and afterwards only patches
// (uint32 indices + new codes) when labels change. Nothing is fetched from the network.
// Above the `budget` trait (level of detail) the kernel keeps the coordinates: it answers
// `ready` with an overview and each `view` request (the visible rectangle, numbered, once the
// camera settles) with the points in it; a lasso goes to the kernel as a polygon.
import createScatterplot from 'regl-scatterplot';
import { captureKeys, createRequester, createThumbCache, h, typed } from './shared.js';

const STYLE = `
.wb-map { position: relative; font: 13px/1.3 var(--jp-ui-font-family, sans-serif);
  color: var(--jp-ui-font-color1, #222); outline: none; }
.wb-map:focus-visible { box-shadow: 0 0 0 2px #1a73e8; }
.wb-map .wb-bar { display: flex; gap: 8px; align-items: center; padding: 4px 0; flex-wrap: wrap; }
.wb-map .wb-canvas-wrap { position: relative; background: #fbfbfb; border: 1px solid #ddd; }
.wb-map canvas { display: block; }
.wb-map .wb-legend { position: absolute; top: 6px; right: 6px; max-height: calc(100% - 12px);
  overflow: auto; background: rgba(255,255,255,.9); border: 1px solid #ddd; padding: 4px 6px;
  border-radius: 4px; min-width: 120px; }
.wb-map .wb-legend-row { display: flex; gap: 6px; align-items: center; white-space: nowrap; }
.wb-map .wb-swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
.wb-map .wb-swatch.weak { opacity: .35; }
.wb-map .wb-key { color: #888; font-variant-numeric: tabular-nums; min-width: 1em; }
.wb-map .wb-count { color: #666; margin-left: auto; padding-left: 8px; font-variant-numeric: tabular-nums; }
.wb-map .wb-hover { position: absolute; pointer-events: none; background: #fff;
  border: 1px solid #bbb; border-radius: 4px; padding: 4px; max-width: 260px;
  box-shadow: 0 2px 6px rgba(0,0,0,.15); z-index: 10; }
.wb-map .wb-hover img { display: block; max-width: 128px; max-height: 128px; image-rendering: pixelated; }
.wb-map .wb-hover .wb-text { white-space: pre-wrap; word-break: break-word; max-height: 8em; overflow: hidden; }
.wb-map .wb-hint { color: #777; }
.wb-map .wb-names { position: absolute; inset: 0; pointer-events: none; overflow: hidden; }
.wb-map .wb-cluster-name { position: absolute; white-space: nowrap; pointer-events: none;
  transform: translate(-50%, -50%); padding: 0 4px; border-radius: 3px; font-size: 12px;
  font-weight: 600; color: #222; background: rgba(255,255,255,.72); }
.wb-map .wb-cluster-name.coarse { font-size: 14px; }
`;

// Code fields sent by Python, with their element type (0 = none everywhere).
const FIELDS = {
  human: Uint16Array, machine: Uint16Array, predicted: Uint16Array,
  cluster: Uint16Array, confidence: Uint8Array, review: Uint8Array, agreement: Uint8Array,
  rule: Uint16Array, filtered: Uint8Array,
};
const GREY = [0.72, 0.72, 0.72, 0.55];
const CLUSTER_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948',
  '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728',
  '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
// The colour-mode menu: [mode, text], one option per mode of Python's COLOR_MODES, in order.
const COLOR_MODE_OPTIONS = [['label', 'colour: labels'], ['human', 'colour: human labels'],
  ['predicted', 'colour: predicted'], ['confidence', 'colour: confidence'],
  ['cluster', 'colour: cluster'], ['review', 'colour: needs review'],
  ['agreement', 'colour: agreement'], ['rule', 'colour: a rule\'s votes']];
// The selection-shape menu: [lasso_type, text].
const LASSO_OPTIONS = [['freeform', 'lasso'], ['rectangle', 'box']];
const HINT = 'Shift+drag: select · +Ctrl: add · +Alt: subtract · 1-9: label · 0: unlabel · Ctrl+Z / Shift+Ctrl+Z';

function hexToRgba(hex, alpha = 1) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
  if (!m) return [...GREY];
  const v = parseInt(m[1], 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255, alpha];
}

// Viridis-like ramp for confidence and agreement: index 0 = none (grey), 1..255 = low..high.
function confidenceRamp() {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const out = [GREY];
  for (let i = 1; i < 256; i++) {
    const t = (i - 1) / 254 * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    const c = stops[k].map((a, j) => (a + (stops[k + 1][j] - a) * f) / 255);
    out.push([...c, 0.9]);
  }
  return out;
}
const CONFIDENCE_RAMP = confidenceRamp();

/**
 * Per-point category (valueA) and colour list for a colour mode. Human labels are drawn
 * opaque; machine labels (propagated or probe) in the same hue, translucent.
 */
export function colourEncoding(mode, codes, classes, n) {
  const maxSlot = classes.reduce((m, c) => Math.max(m, c.slot), 0);
  const strong = Array.from({ length: maxSlot }, () => [...GREY]);
  for (const c of classes) strong[c.slot - 1] = hexToRgba(c.color, 1);
  const weak = strong.map(([r, g, b]) => [r, g, b, 0.3]);
  const value = new Float32Array(n);
  const human = codes.human, machine = codes.machine;
  let colors;
  if (mode === 'human' || mode === 'label') {
    colors = [GREY, ...strong, ...weak];
    for (let i = 0; i < n; i++) {
      const hv = human ? human[i] : 0;
      if (hv > 0) value[i] = hv;
      else if (mode === 'label' && machine && machine[i] > 0) value[i] = maxSlot + machine[i];
    }
  } else if (mode === 'predicted') {
    colors = [GREY, ...strong, ...weak];
    const pred = codes.predicted;
    for (let i = 0; i < n; i++) {
      const p = pred ? pred[i] : 0;
      // Where a human label exists it is shown opaque; predictions stay translucent.
      value[i] = human && human[i] > 0 ? human[i] : (p > 0 ? maxSlot + p : 0);
    }
  } else if (mode === 'rule') {
    // A rule's votes in its class's colour; where it abstains, grey.
    colors = [GREY, ...strong];
    const votes = codes.rule;
    for (let i = 0; i < n; i++) value[i] = votes ? votes[i] : 0;
  } else if (mode === 'confidence' || mode === 'agreement') {
    // One byte per point: 0 = none (no prediction; nobody labelled it), 1..255 = 0..1.
    colors = CONFIDENCE_RAMP;
    const conf = codes[mode];
    for (let i = 0; i < n; i++) value[i] = conf ? conf[i] : 0;
  } else if (mode === 'cluster') {
    const cl = codes.cluster;
    let maxC = 0;
    for (let i = 0; i < n; i++) if (cl && cl[i] > maxC) maxC = cl[i];
    colors = [GREY];
    for (let k = 0; k < maxC; k++) colors.push(hexToRgba(CLUSTER_COLORS[k % CLUSTER_COLORS.length], 0.8));
    for (let i = 0; i < n; i++) value[i] = cl ? cl[i] : 0;
  } else {
    // needs review: 1 = suggested next, 2 = suspected label error; labelled items dimmed.
    colors = [[0.8, 0.8, 0.8, 0.35], [0.1, 0.45, 0.9, 1], [0.86, 0.1, 0.1, 1], [0.45, 0.45, 0.45, 0.5]];
    const rv = codes.review;
    for (let i = 0; i < n; i++) {
      const r = rv ? rv[i] : 0;
      value[i] = r > 0 ? r : (human && human[i] > 0 ? 3 : 0);
    }
  }
  if (colors.length < 2) colors = [GREY, GREY];
  return { value, colors };
}

// -- the elements ---------------------------------------------------------------------

/** A <select> with one option per [value, text]. */
function menu(className, options) {
  const sel = h('select', className);
  for (const [v, text] of options) {
    const o = h('option', null, text);
    o.value = v;
    sel.appendChild(o);
  }
  return sel;
}

/** The map's elements: a bar of controls above the canvas, its legend and hover box. */
function buildView(model, el) {
  const style = h('style');
  style.textContent = STYLE;
  const root = h('div', 'wb-map');
  root.dataset.draws = '0';
  root.dataset.seq = '0';
  const bar = h('div', 'wb-bar');
  const modeSel = menu('wb-mode', COLOR_MODE_OPTIONS);
  const shapeSel = menu('wb-shape', LASSO_OPTIONS);
  const count = h('span', 'wb-selcount', '0 selected');
  const reset = h('button', 'wb-reset', 'reset view');
  const hint = h('span', 'wb-hint', HINT);
  bar.append(modeSel, shapeSel, count, reset, hint);
  const wrap = h('div', 'wb-canvas-wrap');
  wrap.style.height = `${model.get('height')}px`;
  const canvas = document.createElement('canvas');
  wrap.appendChild(canvas);
  const legend = h('div', 'wb-legend');
  const hover = h('div', 'wb-hover');
  hover.style.display = 'none';
  const names = h('div', 'wb-names');
  wrap.append(names, legend, hover);
  root.append(style, bar, wrap);
  el.appendChild(root);
  return { root, modeSel, shapeSel, count, reset, wrap, canvas, legend, hover, names };
}

// -- data buffers -----------------------------------------------------------------------

/**
 * The points: rows [x, y, category] kept between draws (regl-scatterplot takes row arrays
 * as they are, so a recolour rewrites one number per point instead of allocating N new
 * rows), and the label codes by field.
 */
function createPoints(n) {
  // positions: the item position of each drawn point (level of detail), else null.
  return { n, codes: {}, rows: [], spatialIndex: undefined, lastSeq: 0, patchAt: null,
    positions: null, askedAt: null };
}

/** Rows from the `coords` trait (float32 x, y pairs); the spatial index is rebuilt. */
function readCoords(model, points) {
  const view = model.get('coords');
  if (!view || !view.byteLength) return;
  const xy = typed(view, Float32Array);
  const { n } = points;
  points.rows = new Array(n);
  for (let i = 0; i < n; i++) points.rows[i] = [xy[2 * i], xy[2 * i + 1], 0];
  points.spatialIndex = undefined;
}

/** Whole code fields from a `codes` message. */
function applyCodes(points, msg, buffers) {
  (msg.fields || []).forEach((f, k) => {
    if (FIELDS[f] && buffers[k]) points.codes[f] = new FIELDS[f](typed(buffers[k], FIELDS[f]));
  });
  points.lastSeq = msg.seq || points.lastSeq;
}

/** Changed codes of one field from a `patch` message; false when it is not one. */
function applyPatch(points, msg, buffers) {
  const Ctor = FIELDS[msg.field];
  if (!Ctor || buffers.length < 2) return false;
  const { n, codes } = points;
  const idx = typed(buffers[0], Uint32Array);
  const val = typed(buffers[1], Ctor);
  if (!codes[msg.field]) codes[msg.field] = new Ctor(n);
  const arr = codes[msg.field];
  for (let k = 0; k < idx.length; k++) if (idx[k] < n) arr[idx[k]] = val[k];
  points.lastSeq = msg.seq || points.lastSeq;
  points.patchAt = performance.now();
  return true;
}

/**
 * Python's messages: codes and patches redraw (a patch unless more follow), errors log;
 * above the budget, `points` (an overview or a view) and `reload` go to `lod`.
 */
function createMessageHandler(points, redraw, lod) {
  return (msg, buffers) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'codes') {
      applyCodes(points, msg, buffers);
      redraw();
    } else if (msg.type === 'patch') {
      const applied = lod.on ? lod.patch(msg, buffers) : applyPatch(points, msg, buffers);
      if (applied && msg.last !== false) redraw();
    } else if (msg.type === 'points') {
      lod.onPoints(msg, buffers);
    } else if (msg.type === 'reload') {
      lod.reload();
    } else if (msg.type === 'error') {
      console.error('workbench:', msg.message);
    }
  };
}

// -- colour encoding and drawing ----------------------------------------------------------

// Alpha of the points the filter charts hide: still there as context, clearly out.
const FADED_ALPHA = 0.08;

/**
 * Fade the points the filter charts hide (`filtered` code 1): each colour gets a faded twin
 * after the list, and a hidden point takes its colour's twin. Returns the colours and the
 * number of points shown.
 */
export function fadeFiltered(value, colors, filtered, n) {
  if (!filtered) return { colors, kept: n };
  let kept = n;
  const k = colors.length;
  for (let i = 0; i < n; i++) if (filtered[i]) { value[i] += k; kept--; }
  if (kept === n) return { colors, kept };
  return { colors: [...colors, ...colors.map(([r, g, b]) => [r, g, b, FADED_ALPHA])], kept };
}

/**
 * `redraw()`: the points coloured by the current mode, one draw at a time (a request
 * while one runs draws once more after it). `map` holds the scatterplot once started.
 */
function createRedraw(model, root, points, map) {
  let drawing = false, dirty = false;
  let encodingKey = '';
  const redraw = () => {
    const { scatterplot } = map;
    const { n, rows } = points;
    if (!scatterplot || map.destroyed || !rows.length) return Promise.resolve();
    if (drawing) { dirty = true; return Promise.resolve(); }
    drawing = true;
    const seq = points.lastSeq;
    const encoded = colourEncoding(model.get('color_by'), points.codes, model.get('classes') || [], n);
    const { value } = encoded;
    const { colors, kept } = fadeFiltered(value, encoded.colors, points.codes.filtered, n);
    // The shader takes alpha from the opacity encoding, not from the colours: machine
    // labels get their translucency through `opacityBy`.
    const opacity = colors.map((c) => Math.max(0.05, Math.min(1, c[3])));
    // Every `set` renders a frame, and in a software-rendered browser each frame is a
    // full read-back of the canvas: only touch the encoding when it really changed.
    const key = JSON.stringify(colors);
    if (key !== encodingKey) {
      encodingKey = key;
      scatterplot.set({ pointColor: colors, colorBy: 'valueA', opacity, opacityBy: 'valueA' });
    }
    const t0 = performance.now();
    const askedAt = points.askedAt;
    for (let i = 0; i < n; i++) rows[i][2] = value[i];
    return scatterplot
      .draw(rows, {
        zDataType: 'categorical', spatialIndex: points.spatialIndex, preventFilterReset: true,
      })
      .then(() => {
        if (!points.spatialIndex) points.spatialIndex = scatterplot.get('spatialIndex');
        root.dataset.draws = String(Number(root.dataset.draws) + 1);
        root.dataset.kept = String(kept); // points the filter charts leave shown
        root.dataset.drawn = String(n); // points handed to WebGL in this draw
        root.dataset.seq = String(seq);
        root.dataset.lastDrawMs = String(Math.round(performance.now() - t0));
        // Patch received -> recoloured points handed to WebGL: the browser's share of a
        // relabel, readable by tests and benchmarks.
        if (points.patchAt !== null) root.dataset.patchToDrawMs = String(Math.round(performance.now() - points.patchAt));
        points.patchAt = null;
        // View asked for (camera settled) -> its points drawn: a zoomed-in repaint.
        if (askedAt !== null && rows === points.rows && points.askedAt === askedAt) {
          root.dataset.viewToDrawMs = String(Math.round(performance.now() - askedAt));
          points.askedAt = null;
        }
      })
      .catch((e) => console.error('workbench map: draw failed', e))
      .finally(() => {
        drawing = false;
        if (dirty) { dirty = false; redraw(); }
      });
  };
  return redraw;
}

// -- legend -----------------------------------------------------------------------------

/** One legend row: a swatch and a text. */
function legendRow(color, text) {
  const row = h('div', 'wb-legend-row');
  const sw = h('span', 'wb-swatch');
  sw.style.background = color;
  row.append(sw, h('span', 'wb-name', text));
  return row;
}

/** One class's legend row: key, opaque and translucent swatch, name, label counts. */
function classRow(c) {
  const row = h('div', 'wb-legend-row');
  row.dataset.slot = String(c.slot);
  const sw = h('span', 'wb-swatch');
  sw.style.background = c.color;
  const weak = h('span', 'wb-swatch weak');
  weak.style.background = c.color;
  const key = h('span', 'wb-key', c.key ? String(c.key) : '');
  const name = h('span', 'wb-name', c.name); // textContent: names are never markup
  const cnt = h('span', 'wb-count', `${c.human ?? 0} + ${c.machine ?? 0}`);
  cnt.title = 'human labels + machine labels';
  row.append(key, sw, weak, name, cnt);
  return row;
}

/** The legend of the current mode: its scale, or the classes. */
function drawLegend(model, legend) {
  legend.replaceChildren();
  const mode = model.get('color_by');
  const classes = model.get('classes') || [];
  if (mode === 'confidence' || mode === 'cluster' || mode === 'review' || mode === 'agreement') {
    const rows = mode === 'review'
      ? [['#1a73e8', 'label next'], ['#dc1a1a', 'suspected error'], ['#777', 'labelled']]
      : mode === 'cluster' ? [['#4e79a7', `${model.get('n_clusters')} clusters`]]
        : mode === 'agreement'
          ? [['#440154', 'annotators disagree'], ['#fde725', 'all agree'], ['#b8b8b8', 'no annotations']]
          : [['#440154', 'low confidence'], ['#fde725', 'high confidence']];
    for (const [c, text] of rows) legend.appendChild(legendRow(c, text));
    return;
  }
  if (!classes.length) {
    legend.appendChild(h('div', 'wb-hint', 'no classes yet'));
    return;
  }
  for (const c of classes) legend.appendChild(classRow(c));
}

// -- lasso: the selection, both ways ------------------------------------------------------

/**
 * `fromPython()` shows the `selection` trait; `send(points)` sets it from a lasso. Above the
 * budget the count is of every selected item, and the drawn ones among them are marked.
 */
function createSelection(model, count, map, points) {
  const fromPython = () => {
    const view = model.get('selection');
    let sel = view && view.byteLength ? typed(view, Uint32Array) : [];
    count.textContent = `${sel.length} selected`;
    if (points.positions) sel = localIndices(points.positions, sel);
    else sel = Array.from(sel);
    if (!map.scatterplot) return;
    if (sel.length) map.scatterplot.select(sel, { preventEvent: true });
    else map.scatterplot.deselect({ preventEvent: true });
  };
  const send = (points) => {
    const selection = Array.from(points);
    count.textContent = `${selection.length} selected`;
    const buf = new Uint32Array(selection);
    model.set('selection', new DataView(buf.buffer));
    model.save_changes();
  };
  return { fromPython, send };
}

/** The WebGL scatterplot on `canvas`: Shift+drag lassos, +Ctrl adds, +Alt subtracts. */
function createLassoScatterplot(model, canvas, width) {
  return createScatterplot({
    canvas,
    width: Math.max(width, 200),
    height: model.get('height'),
    pointSize: model.get('point_size'),
    pointSizeSelected: 2,
    pointOutlineWidth: 1,
    backgroundColor: [0.984, 0.984, 0.984, 1],
    pointColorActive: [0.05, 0.05, 0.05, 1],
    lassoColor: [0.1, 0.45, 0.9, 1],
    lassoMinDelay: 5,
    lassoMinDist: 2,
    lassoClearEvent: 'lassoEnd',
    lassoType: model.get('lasso_type'),
    actionKeyMap: { lasso: 'shift', merge: 'ctrl', remove: 'alt' },
    deselectOnDblClick: true,
    opacityInactiveScale: 1,
    // Above the budget, zooming in loads the detail of the view from the kernel: points keep
    // their size on screen, as the overview's do (growing them would cover the new detail,
    // and in a software-rendered browser each frame's cost grows with their area).
    pointScaleMode: levelOfDetail(model) ? 'constant' : 'asinh',
    // The map's coordinates fill [-1, 1]: a camera a little further back keeps the points
    // on its edges whole instead of cut in half by the canvas border.
    cameraDistance: 1.08,
  });
}

// -- level of detail: above the budget, the kernel sends what to draw -----------------------

// The camera still this long = settled: then the visible rectangle's points are asked for.
const VIEW_SETTLE_MS = 200;
// Views kept loaded besides the overview (least recently shown dropped first), and at most
// this many of their points in all: a zoom back out or a pan back is drawn at once.
const VIEW_CACHE = 6;
const VIEW_CACHE_POINTS = 3000000;

/** Indices into sorted `positions` of the sorted item positions `wanted` present there. */
function localIndices(positions, wanted) {
  const out = [];
  let i = 0, j = 0;
  while (i < wanted.length && j < positions.length) {
    if (wanted[i] < positions[j]) i++;
    else if (wanted[i] > positions[j]) j++;
    else { out.push(j); i++; j++; }
  }
  return out;
}

/** A loaded set (overview or view) from a `points` message: positions, x/y and codes. */
function readSet(msg, buffers) {
  const positions = new Uint32Array(typed(buffers[0], Uint32Array));
  const codes = {};
  (msg.fields || []).forEach((f, k) => {
    if (FIELDS[f] && buffers[k + 2]) codes[f] = new FIELDS[f](typed(buffers[k + 2], FIELDS[f]));
  });
  return { kind: msg.kind, seq: msg.seq, rect: msg.rect, extent: msg.extent, total: msg.total,
    complete: !!msg.complete, coarse: !!msg.coarse, n: positions.length, positions,
    xy: new Float32Array(typed(buffers[1], Float32Array)), codes, codesSeq: msg.codes_seq || 0 };
}

/** A patch (sorted positions + codes) applied to one loaded set; true if it had any. */
function patchSet(set, field, idx, val) {
  const hits = localIndices(set.positions, idx);
  if (!hits.length) return false;
  if (!set.codes[field]) set.codes[field] = new FIELDS[field](set.n);
  const arr = set.codes[field];
  // hits are in order of idx too (both sorted): walk them together
  let k = 0;
  for (let i = 0; i < idx.length && k < hits.length; i++) {
    if (idx[i] === set.positions[hits[k]]) { arr[hits[k]] = val[i]; k++; }
  }
  return true;
}

const contains = (a, b) => a[0] <= b[0] && a[1] <= b[1] && a[2] >= b[2] && a[3] >= b[3];

/**
 * Level of detail: `on` when the map has more points than its budget. Shows the overview
 * or a view's points (the root's data-loaded, -loaded-kind, -total, -complete and
 * -position-sum say which), asks for the visible rectangle once the camera settles
 * (`onView`), drops stale answers (data-stale counts them) and sends lassos as polygons.
 */
/** True when the map has more points than its budget: the kernel sends what to draw. */
function levelOfDetail(model) {
  const budget = model.get('budget');
  return budget > 0 && model.get('n') > budget;
}

function createLod(model, root, points, map, redraw, selection) {
  const on = levelOfDetail(model);
  const state = { overview: null, views: [], current: null, seq: 0, timer: null, stale: 0,
    mods: { merge: false, remove: false }, lassoAt: -1e9 };
  const show = (set) => {
    state.current = set;
    const { n, xy } = set;
    const rows = new Array(n);
    for (let i = 0; i < n; i++) rows[i] = [xy[2 * i], xy[2 * i + 1], 0];
    Object.assign(points, { n, rows, codes: set.codes, positions: set.positions,
      spatialIndex: undefined, lastSeq: Math.max(points.lastSeq, set.codesSeq) });
    let sum = 0;
    for (let i = 0; i < n; i++) sum = (sum + set.positions[i]) % 4294967296;
    Object.assign(root.dataset, { loaded: String(n), loadedKind: set.kind, total: String(set.total),
      complete: String(set.complete), positionSum: String(sum), loadedSeq: String(set.seq),
      coarse: String(set.coarse) });
    // the selected items among the new points, once they are drawn
    redraw().then(() => selection.fromPython());
  };
  const visibleRect = () => {
    // the inverse of the names' transform: clip = projection * view * [aspect * x, y]
    const sp = map.scatterplot;
    const view = sp.get('cameraView');
    const ratio = sp.get('width') / sp.get('height'), aspect = sp.get('aspectRatio') || 1;
    const xs = [-1, 1].map((cx) => (cx * ratio - view[12]) / view[0] / aspect);
    const ys = [-1, 1].map((cy) => (cy - view[13]) / view[5]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  };
  const settle = () => {
    if (!on || !map.scatterplot || map.destroyed || !state.overview) return;
    const r = visibleRect();
    root.dataset.viewRect = r.map((v) => v.toFixed(4)).join(',');
    const cur = state.current;
    if (contains(r, state.overview.extent)) {
      state.seq += 1; // whatever is on its way is stale now
      root.dataset.askedSeq = String(state.overview.seq);
      if (cur !== state.overview) show(state.overview);
      return;
    }
    if (cur && cur.kind === 'view' && cur.complete && contains(cur.rect, r)) return;
    state.seq += 1;
    const hit = state.views.find((s) => s.complete && contains(s.rect, r));
    if (hit) {
      root.dataset.askedSeq = String(hit.seq);
      state.views = [hit, ...state.views.filter((s) => s !== hit)];
      show(hit);
      return;
    }
    points.askedAt = performance.now();
    root.dataset.askedSeq = String(state.seq);
    model.send({ type: 'view', seq: state.seq, rect: r });
  };
  const onView = () => {
    if (!on) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(settle, VIEW_SETTLE_MS);
  };
  const onPoints = (msg, buffers) => {
    if (msg.kind === 'overview') {
      // a quick (coarse) overview first above twice the budget, then the whole one
      state.overview = readSet(msg, buffers);
      state.views = [];
      if (state.current && state.current.kind === 'view') return; // zoomed in meanwhile
      show(state.overview);
      if (!msg.coarse) settle(); // zoomed in when it came (a reload): ask for the view again
      return;
    }
    if (msg.seq !== state.seq) {
      state.stale += 1;
      root.dataset.stale = String(state.stale);
      return;
    }
    const set = readSet(msg, buffers);
    let kept = set.n;
    state.views = [set, ...state.views].filter((s, k) => {
      if (k === 0) return true;
      kept += s.n;
      return k < VIEW_CACHE && kept <= VIEW_CACHE_POINTS;
    });
    show(set);
  };
  const patch = (msg, buffers) => {
    const Ctor = FIELDS[msg.field];
    if (!Ctor || buffers.length < 2) return false;
    const idx = typed(buffers[0], Uint32Array), val = typed(buffers[1], Ctor);
    let current = false;
    for (const set of [state.overview, ...state.views]) {
      if (set && patchSet(set, msg.field, idx, val) && set === state.current) current = true;
    }
    if (state.current) points.codes = state.current.codes;
    points.lastSeq = msg.seq || points.lastSeq;
    if (current) points.patchAt = performance.now();
    root.dataset.seq = String(points.lastSeq);
    return current;
  };
  const reload = () => {
    state.views = [];
    state.current = null;
    state.seq += 1;
    model.send({ type: 'ready' }); // answered with a new overview, then the view is asked
  };
  const lassoStart = () => { state.lassoAt = performance.now(); };
  const lassoEnd = ({ coordinates }) => {
    state.lassoAt = performance.now();
    if (!on || !coordinates || coordinates.length < 3) return;
    root.dataset.lassoSent = String(performance.now()); // for benchmarks
    model.send({ type: 'lasso', polygon: coordinates.flat(), ...state.mods });
  };
  // The scatterplot's own selection events (of the drawn points only) are not the
  // selection above the budget; a deselect right after a lasso is the lasso's.
  const ownEvent = () => on;
  const lassoDeselect = () => on && performance.now() - state.lassoAt < 1000;
  const pressed = (e) => { state.mods = { merge: e.ctrlKey || e.metaKey, remove: e.altKey }; };
  return { on, onView, onPoints, patch, reload, lassoStart, lassoEnd, ownEvent, lassoDeselect,
    pressed, dispose: () => clearTimeout(state.timer) };
}

// -- cluster names ----------------------------------------------------------------------

// Zoomed in at least this much (from the first view), the map shows the fine names.
const FINE_NAMES_ZOOM = 1.6;

/**
 * Suggested cluster names over the map (the `cluster_labels` trait): coarse names while
 * zoomed out, fine ones zoomed in; each at its data position through the camera, larger
 * clusters first, a name that would overlap one already placed is skipped. Text only.
 */
function createNames(model, root, layer, map) {
  let labels = [];
  let baseDistance = null;
  const rebuild = () => {
    const items = (model.get('cluster_labels') || []).slice().sort((a, b) => (b.size || 0) - (a.size || 0));
    labels = items.map((d) => {
      const el = h('div', `wb-cluster-name ${d.level === 'coarse' ? 'coarse' : 'fine'}`);
      el.textContent = String(d.name); // names are data, never markup
      el.dataset.level = d.level;
      el.style.display = 'none';
      return { d, el, w: 0, h: 0 };
    });
    layer.replaceChildren(...labels.map((l) => l.el));
    place();
  };
  const place = () => {
    const sp = map.scatterplot;
    if (!sp || map.destroyed) return;
    const view = sp.get('cameraView');
    const width = sp.get('width'), height = sp.get('height');
    const aspect = sp.get('aspectRatio') || 1;
    const distance = sp.get('cameraDistance');
    if (baseDistance === null) baseDistance = distance;
    const hasCoarse = labels.some((l) => l.d.level === 'coarse');
    const level = hasCoarse && baseDistance / distance < FINE_NAMES_ZOOM ? 'coarse' : 'fine';
    const boxes = [];
    let shown = 0;
    for (const l of labels) {
      if (l.d.level !== level) { l.el.style.display = 'none'; continue; }
      // clip = projection * view * model * [x, y, 0, 1] (regl-scatterplot's own transform)
      const ax = aspect * l.d.x, y = l.d.y;
      const cx = (view[0] * ax + view[4] * y + view[12]) / (width / height);
      const cy = view[1] * ax + view[5] * y + view[13];
      const px = (width * (cx + 1)) / 2, py = height * (0.5 - cy / 2);
      l.el.style.display = 'block';
      if (!l.w) { l.w = l.el.offsetWidth; l.h = l.el.offsetHeight; }
      const box = [px - l.w / 2, py - l.h / 2, px + l.w / 2, py + l.h / 2];
      const outside = box[2] < 0 || box[0] > width || box[3] < 0 || box[1] > height;
      const overlaps = boxes.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3]);
      if (outside || overlaps) { l.el.style.display = 'none'; continue; }
      l.el.style.left = `${px}px`;
      l.el.style.top = `${py}px`;
      boxes.push(box);
      shown += 1;
    }
    root.dataset.namesLevel = level;
    root.dataset.namesShown = String(shown);
    root.dataset.zoom = (baseDistance / distance).toFixed(2);
  };
  return { rebuild, place };
}

// -- hover ------------------------------------------------------------------------------

/** `show(index)`: the item's preview beside the mouse; `hide()`. */
function createHover(wrap, hover, thumbs) {
  let mouse = [0, 0];
  wrap.addEventListener('mousemove', (e) => {
    const r = wrap.getBoundingClientRect();
    mouse = [e.clientX - r.left, e.clientY - r.top];
  });
  let hovered = -1;
  const show = (index) => {
    hovered = index;
    hover.replaceChildren(h('div', 'wb-hint', `item ${index}`));
    const r = wrap.getBoundingClientRect();
    hover.style.left = `${Math.min(mouse[0] + 12, r.width - 150)}px`;
    hover.style.top = `${Math.min(mouse[1] + 12, r.height - 150)}px`;
    hover.style.display = 'block';
    thumbs.get(index).then((t) => {
      if (hovered !== index) return;
      const parts = [];
      if (t.url) {
        const img = document.createElement('img');
        img.className = 'wb-thumb';
        img.alt = '';
        img.src = t.url;
        parts.push(img);
      }
      if (t.text) parts.push(h('div', 'wb-text', t.text));
      if (t.label) parts.push(h('div', 'wb-hint', t.label));
      hover.replaceChildren(...parts);
    }).catch((e) => hover.replaceChildren(h('div', 'wb-hint', String(e.message || e))));
  };
  const hide = () => { hovered = -1; hover.style.display = 'none'; };
  return { show, hide };
}

// -- keys: the model's traits and the bar's controls ----------------------------------------

/** The bar's menus and button change the model (or the view). */
function bindBar(model, view, map) {
  const { modeSel, shapeSel, reset } = view;
  modeSel.value = model.get('color_by');
  modeSel.addEventListener('change', () => { model.set('color_by', modeSel.value); model.save_changes(); });
  shapeSel.value = model.get('lasso_type');
  shapeSel.addEventListener('change', () => { model.set('lasso_type', shapeSel.value); model.save_changes(); });
  reset.addEventListener('click', () => map.scatterplot && map.scatterplot.reset());
}

/**
 * What each trait change does, as [event, handler]: one table for subscribing and
 * unsubscribing, so the two can never drift apart.
 */
function traitListeners(model, view, points, map, redraw, selection, names) {
  const { modeSel, shapeSel, legend } = view;
  const onMode = () => { modeSel.value = model.get('color_by'); drawLegend(model, legend); redraw(); };
  const onClasses = () => { drawLegend(model, legend); redraw(); };
  const onShape = () => { shapeSel.value = model.get('lasso_type'); map.scatterplot && map.scatterplot.set({ lassoType: model.get('lasso_type') }); };
  const onCoords = () => { readCoords(model, points); redraw(); };
  const onSize = () => map.scatterplot && map.scatterplot.set({ pointSize: model.get('point_size') });
  return [
    ['change:color_by', onMode],
    ['change:classes', onClasses],
    ['change:selection', selection.fromPython],
    ['change:lasso_type', onShape],
    ['change:coords', onCoords],
    ['change:point_size', onSize],
    ['change:cluster_labels', names.rebuild],
  ];
}

function render({ model, el }) {
  const view = buildView(model, el);
  const { root, wrap, canvas } = view;
  const releaseKeys = captureKeys(root, model);

  const { request, dispose: disposeRequester } = createRequester(model);
  const thumbs = createThumbCache(request);

  const points = createPoints(model.get('n'));
  const map = { scatterplot: null, destroyed: false };
  const redraw = createRedraw(model, root, points, map);
  const names = createNames(model, root, view.names, map);
  const selection = createSelection(model, view.count, map, points);
  const lod = createLod(model, root, points, map, redraw, selection);

  const onCustom = createMessageHandler(points, redraw, lod);
  model.on('msg:custom', onCustom);

  // JupyterLab's notebook treats a (Shift+)mousedown in a cell as the start of a cell
  // selection or drag and then swallows mousemove events on the whole document, which
  // would freeze the lasso. The map's presses are the map's own.
  for (const type of ['mousedown', 'pointerdown']) wrap.addEventListener(type, (e) => e.stopPropagation());
  wrap.addEventListener('mousedown', lod.pressed); // Ctrl adds, Alt subtracts (lasso above budget)

  const hover = createHover(wrap, view.hover, thumbs);

  const start = () => {
    if (map.destroyed) return;
    const { width } = wrap.getBoundingClientRect();
    const scatterplot = createLassoScatterplot(model, canvas, width);
    map.scatterplot = scatterplot;
    root.dataset.pointScale = scatterplot.get('pointScaleMode');
    // Faded points (hidden by the filter charts) are context only: a lasso leaves them out.
    scatterplot.subscribe('select', ({ points: picked }) => lod.ownEvent() || selection.send(
      points.codes.filtered ? Array.from(picked).filter((i) => !points.codes.filtered[i]) : picked));
    scatterplot.subscribe('deselect', () => lod.lassoDeselect() || selection.send([]));
    scatterplot.subscribe('lassoStart', lod.lassoStart);
    scatterplot.subscribe('lassoEnd', lod.lassoEnd);
    scatterplot.subscribe('pointover', (i) => hover.show(points.positions ? points.positions[i] : i));
    scatterplot.subscribe('pointout', hover.hide);
    scatterplot.subscribe('view', () => { names.place(); lod.onView(); });
    names.rebuild();
    readCoords(model, points);
    selection.fromPython();
    // Python answers with a `codes` message (all label codes, once per view).
    model.send({ type: 'ready' });
  };

  const resize = new ResizeObserver(() => {
    if (!map.scatterplot) return;
    const { width } = wrap.getBoundingClientRect();
    if (width > 0) map.scatterplot.set({ width, height: model.get('height') });
    names.place();
  });
  resize.observe(wrap);

  bindBar(model, view, map);
  const listeners = traitListeners(model, view, points, map, redraw, selection, names);
  for (const [event, fn] of listeners) model.on(event, fn);
  drawLegend(model, view.legend);
  // The element is attached to the page after render returns; wait a frame for its size.
  requestAnimationFrame(start);

  return () => {
    map.destroyed = true;
    resize.disconnect();
    releaseKeys();
    model.off('msg:custom', onCustom);
    for (const [event, fn] of listeners) model.off(event, fn);
    disposeRequester();
    lod.dispose();
    thumbs.dispose();
    if (map.scatterplot) map.scatterplot.destroy();
  };
}

export default { render };
