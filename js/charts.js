// The filter charts beside the map: one small chart per column, drawn from the counts
// Python computes (never the rows). Drag across a histogram to keep a range of its bins,
// click bars to keep their categories; a chart's "clear" (or a click on the one bin kept)
// drops its filter. Names and values are set with textContent: they are data, not markup.
import { h } from './shared.js';

const STYLE = `
.wb-charts { font: 12px/1.3 var(--jp-ui-font-family, sans-serif); color: var(--jp-ui-font-color1, #222);
  padding: 0 4px 0 8px; max-height: 820px; overflow-y: auto; }
.wb-charts .wb-chead { display: flex; gap: 6px; align-items: center; padding: 4px 0; position: sticky;
  top: 0; background: var(--jp-layout-color0, #fff); z-index: 1; }
.wb-charts .wb-csum { font-weight: 600; }
.wb-charts .wb-chart { margin: 6px 0 10px; }
.wb-charts .wb-ctitle { display: flex; gap: 6px; align-items: baseline; }
.wb-charts .wb-ctitle .wb-cname { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.wb-charts .wb-ctitle .wb-cfilter { color: #1a73e8; margin-left: auto; white-space: nowrap; }
.wb-charts button { font-size: 11px; padding: 0 5px; cursor: pointer; }
.wb-charts svg { display: block; cursor: crosshair; user-select: none; touch-action: none; }
.wb-charts .wb-axis { display: flex; justify-content: space-between; color: #777; font-size: 11px;
  font-variant-numeric: tabular-nums; }
.wb-charts .wb-row { display: flex; gap: 6px; align-items: center; cursor: pointer; padding: 1px 0; }
.wb-charts .wb-row:hover { background: #f0f4fa; }
.wb-charts .wb-row .wb-rname { width: 96px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.wb-charts .wb-row .wb-track { flex: 1; height: 10px; position: relative; }
.wb-charts .wb-row .wb-track span { position: absolute; left: 0; top: 0; height: 100%; }
.wb-charts .wb-row .wb-rcount { color: #555; font-variant-numeric: tabular-nums; white-space: nowrap;
  min-width: 76px; text-align: right; }
.wb-charts .wb-row.chosen .wb-rname { font-weight: 600; color: #1a73e8; }
.wb-charts .wb-bars.filtering .wb-row:not(.chosen) { opacity: .55; }
.wb-charts .wb-hint, .wb-charts .wb-note { color: #777; }
.wb-charts .wb-cerror { color: #c5221f; }
`;
// All items of a bin or bar, and those the filters keep (drawn over it).
const ALL_COLOR = '#d5dbe3';
const KEPT_COLOR = '#4e79a7';
const WIDTH = 290;
const HEIGHT = 60;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** A number for an axis or a range: whole numbers with separators, else 3 digits. */
function fmt(v) {
  if (Number.isInteger(v)) return v.toLocaleString('en');
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** "kept of all" for a bin or a bar. */
function share(kept, all) {
  return kept === all ? all.toLocaleString('en') : `${kept.toLocaleString('en')} / ${all.toLocaleString('en')}`;
}

/** A histogram: bins of equal width, a brush over whole bins, sent as a range of values. */
function histogram(model, chart) {
  const { counts, kept, edges, range, name } = chart;
  const bins = counts.length;
  const bw = WIDTH / bins;
  const top = Math.max(1, ...counts);
  const el = svg('svg', { width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}` });
  el.dataset.column = name;
  for (let i = 0; i < bins; i++) {
    const g = svg('g', {});
    const hAll = (counts[i] / top) * HEIGHT, hKept = (kept[i] / top) * HEIGHT;
    g.append(svg('rect', { x: i * bw + 0.5, y: HEIGHT - hAll, width: Math.max(bw - 1, 1), height: hAll, fill: ALL_COLOR }));
    g.append(svg('rect', { x: i * bw + 0.5, y: HEIGHT - hKept, width: Math.max(bw - 1, 1), height: hKept, fill: KEPT_COLOR }));
    const tip = svg('title', {});
    tip.textContent = `${fmt(edges[i])} – ${fmt(edges[i + 1])}: ${share(kept[i], counts[i])} items`;
    g.append(tip);
    el.append(g);
  }
  const span = edges[bins] - edges[0] || 1;
  const brush = svg('rect', { x: 0, y: 0, width: 0, height: HEIGHT, fill: 'rgba(26,115,232,.14)',
    stroke: '#1a73e8', 'stroke-width': 1, 'pointer-events': 'none' });
  brush.classList.add('wb-brush');
  const showBrush = (x0, x1) => {
    brush.setAttribute('x', String(Math.min(x0, x1)));
    brush.setAttribute('width', String(Math.abs(x1 - x0)));
    brush.style.display = x0 === x1 ? 'none' : '';
  };
  if (range) showBrush(((range[0] - edges[0]) / span) * WIDTH, ((range[1] - edges[0]) / span) * WIDTH);
  else showBrush(0, 0);
  el.append(brush);
  // Drag: the bins under the pointer from press to release (a click keeps one bin).
  const binAt = (e) => {
    const r = el.getBoundingClientRect();
    return Math.min(bins - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * bins)));
  };
  let start = null;
  el.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    start = binAt(e);
    el.setPointerCapture(e.pointerId);
    showBrush(start * bw, (start + 1) * bw);
  });
  el.addEventListener('pointermove', (e) => {
    if (start === null) return;
    const b = binAt(e);
    showBrush(Math.min(start, b) * bw, (Math.max(start, b) + 1) * bw);
  });
  el.addEventListener('pointerup', (e) => {
    if (start === null) return;
    const b = binAt(e);
    const lo = Math.min(start, b), hi = Math.max(start, b);
    start = null;
    // A click on the one bin kept already drops the range; anything else keeps the bins.
    if (range && range[0] === edges[lo] && range[1] === edges[hi + 1] && lo === hi) {
      model.send({ type: 'clear', column: name });
    } else {
      model.send({ type: 'brush', column: name, lo: edges[lo], hi: edges[hi + 1] });
    }
  });
  const axis = h('div', 'wb-axis');
  axis.append(h('span', null, fmt(edges[0])), h('span', null, fmt(edges[bins])));
  return [el, axis];
}

/** Bars, one row per category: click a row to keep it (or no longer keep it). */
function barRows(model, chart) {
  const { counts, kept, categories, chosen, name } = chart;
  const top = Math.max(1, ...counts);
  const box = h('div', `wb-bars${chosen.length ? ' filtering' : ''}`);
  box.dataset.column = name;
  categories.forEach((c, k) => {
    const row = h('div', `wb-row${chosen.includes(c) ? ' chosen' : ''}`);
    row.dataset.category = c === null ? '' : c;
    const label = c === null ? '(none)' : c;
    const nameEl = h('span', 'wb-rname', label);
    nameEl.title = label;
    const track = h('span', 'wb-track');
    const all = h('span');
    all.style.width = `${(counts[k] / top) * 100}%`;
    all.style.background = ALL_COLOR;
    const mine = h('span');
    mine.style.width = `${(kept[k] / top) * 100}%`;
    mine.style.background = KEPT_COLOR;
    track.append(all, mine);
    row.append(nameEl, track, h('span', 'wb-rcount', share(kept[k], counts[k])));
    row.addEventListener('click', () => model.send({ type: 'toggle', column: name, category: c }));
    box.append(row);
  });
  return [box];
}

/** One chart: its title, what its filter keeps (with "clear"), the chart, what has no value. */
function chartBlock(model, chart) {
  const block = h('div', 'wb-chart');
  block.dataset.column = chart.name;
  const title = h('div', 'wb-ctitle');
  const name = h('span', 'wb-cname', chart.title);
  name.title = chart.title;
  title.append(name);
  let filter = '';
  if (chart.kind === 'histogram' && chart.range) filter = `${fmt(chart.range[0])} – ${fmt(chart.range[1])}`;
  if (chart.kind === 'bars' && chart.chosen.length) filter = chart.chosen.map((c) => (c === null ? '(none)' : c)).join(', ');
  if (filter) {
    const f = h('span', 'wb-cfilter', `keeps ${filter}`);
    f.title = f.textContent;
    const clear = h('button', 'wb-cclear', 'clear');
    clear.addEventListener('click', () => model.send({ type: 'clear', column: chart.name }));
    title.append(f, clear);
  }
  block.append(title, ...(chart.kind === 'histogram' ? histogram(model, chart) : barRows(model, chart)));
  if (chart.missing) {
    block.append(h('div', 'wb-hint', `${share(chart.missing_kept, chart.missing)} without a value`
      + (chart.kind === 'histogram' && chart.range ? ' (a range leaves them out)' : '')));
  }
  return block;
}

function render({ model, el }) {
  const style = h('style');
  style.textContent = STYLE;
  const root = h('div', 'wb-charts');
  const head = h('div', 'wb-chead');
  const summary = h('span', 'wb-csum');
  const clearAll = h('button', 'wb-clear-all', 'clear filters');
  clearAll.addEventListener('click', () => model.send({ type: 'clear', column: null }));
  head.append(summary, clearAll);
  const error = h('div', 'wb-cerror');
  const list = h('div', 'wb-clist');
  const note = h('div', 'wb-note');
  root.append(style, head, error, list, note);
  el.appendChild(root);
  // JupyterLab takes a press in a cell for a cell drag and swallows the moves: a brush's
  // presses are the charts' own.
  for (const type of ['mousedown', 'pointerdown']) root.addEventListener(type, (e) => e.stopPropagation());

  const draw = () => {
    const charts = model.get('charts') || [];
    const kept = model.get('kept'), total = model.get('total');
    root.dataset.kept = String(kept);
    root.dataset.total = String(total);
    summary.textContent = charts.length
      ? `${kept.toLocaleString('en')} of ${total.toLocaleString('en')} items pass the filters`
      : 'computing the charts…';
    const filtering = charts.some((c) => (c.kind === 'histogram' ? c.range : c.chosen.length));
    clearAll.style.display = filtering ? '' : 'none';
    error.textContent = model.get('error');
    list.replaceChildren(...charts.map((c) => chartBlock(model, c)));
    const skipped = Object.entries(model.get('skipped') || {});
    note.textContent = skipped.length
      ? `Not charted: ${skipped.map(([c, why]) => `${c} (${why})`).join(', ')}.`
      : '';
    if (charts.length) note.append(h('div', null, 'Drag across a histogram to keep a range of bins, click bars to keep them; "clear" drops a chart\'s filter.'));
  };
  const onMsg = (msg) => {
    if (msg && msg.type === 'error') console.error('workbench charts:', msg.message);
  };
  const names = ['change:charts', 'change:kept', 'change:total', 'change:skipped', 'change:error'];
  for (const e of names) model.on(e, draw);
  model.on('msg:custom', onMsg);
  draw();
  return () => {
    for (const e of names) model.off(e, draw);
    model.off('msg:custom', onMsg);
  };
}

export default { render };
