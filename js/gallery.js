// The gallery: the current selection as a paged grid of thumbnails or text cards.
// Each card can be relabelled alone or taken out of the selection; number keys label
// what is left. Texts and names are always set with textContent.
import { captureKeys, createRequester, createThumbCache, h } from './shared.js';

const STYLE = `
.wb-gallery { font: 13px/1.3 var(--jp-ui-font-family, sans-serif); outline: none; }
.wb-gallery:focus-visible { box-shadow: 0 0 0 2px #1a73e8; }
.wb-gallery .wb-gbar { display: flex; gap: 8px; align-items: center; padding: 4px 0; }
.wb-gallery .wb-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 6px; }
.wb-gallery .wb-card { border: 1px solid #ddd; border-radius: 4px; padding: 4px; background: #fff;
  display: flex; flex-direction: column; gap: 3px; position: relative; }
.wb-gallery .wb-card img { width: 100%; aspect-ratio: 1; object-fit: contain; image-rendering: pixelated; background: #f4f4f4; }
.wb-gallery .wb-card .wb-text { white-space: pre-wrap; word-break: break-word; max-height: 7.5em; overflow: hidden; }
.wb-gallery .wb-card .wb-lab { font-size: 12px; color: #333; }
.wb-gallery .wb-card .wb-lab.machine { color: #888; font-style: italic; }
.wb-gallery .wb-card .wb-drop { position: absolute; top: 2px; right: 2px; border: none; background: rgba(255,255,255,.8); cursor: pointer; }
.wb-gallery .wb-card select { width: 100%; }
.wb-gallery .wb-empty { color: #777; padding: 8px 0; }
`;

function render({ model, el }) {
  const style = h('style');
  style.textContent = STYLE;
  const root = h('div', 'wb-gallery');
  const bar = h('div', 'wb-gbar');
  const title = h('span', 'wb-gtitle');
  const prev = h('button', 'wb-prev', '‹ prev');
  const next = h('button', 'wb-next', 'next ›');
  const pageLabel = h('span', 'wb-page');
  bar.append(title, prev, pageLabel, next);
  const grid = h('div', 'wb-grid');
  root.append(style, bar, grid);
  el.appendChild(root);
  const releaseKeys = captureKeys(root, model);
  const { request, dispose } = createRequester(model);
  const thumbs = createThumbCache(request);

  const renderCards = () => {
    const cards = model.get('cards') || [];
    const classes = model.get('classes') || [];
    const page = model.get('page'), pages = model.get('pages'), total = model.get('total');
    const hidden = model.get('hidden');
    title.textContent = `${model.get('title')}: ${total} item${total === 1 ? '' : 's'}`
      + (hidden ? ` (${hidden} more hidden by the filter charts)` : '');
    root.dataset.total = String(total);
    root.dataset.hidden = String(hidden);
    pageLabel.textContent = pages > 0 ? `page ${page + 1} / ${pages}` : '';
    prev.disabled = page <= 0;
    next.disabled = page >= pages - 1;
    grid.replaceChildren();
    if (!cards.length) {
      grid.appendChild(h('div', 'wb-empty', hidden
        ? `The filter charts hide all ${hidden} selected items: clear a chart's filter to see them.`
        : 'Nothing selected: lasso points on the map (Shift+drag), or pick a queue.'));
      return;
    }
    for (const c of cards) {
      const card = h('div', 'wb-card');
      card.dataset.index = String(c.index);
      const drop = h('button', 'wb-drop', '×');
      drop.title = 'take out of the selection';
      drop.addEventListener('click', () => model.send({ type: 'drop', index: c.index }));
      card.appendChild(drop);
      if (c.kind === 'image') {
        const img = document.createElement('img');
        img.alt = '';
        card.appendChild(img);
        thumbs.get(c.index).then((t) => { if (t.url) img.src = t.url; }).catch(() => {});
      }
      if (c.text) card.appendChild(h('div', 'wb-text', c.text));
      const lab = h('div', `wb-lab${c.source && c.source !== 'human' ? ' machine' : ''}`,
        c.label ? (c.source === 'human' ? c.label : `${c.label} (${c.source})`) : 'unlabelled');
      card.appendChild(lab);
      const sel = document.createElement('select');
      const none = h('option', null, '— relabel —');
      none.value = '';
      sel.appendChild(none);
      for (const k of classes) {
        const o = h('option', null, k.name);
        o.value = String(k.slot);
        sel.appendChild(o);
      }
      const rm = h('option', null, '(remove label)');
      rm.value = '0';
      sel.appendChild(rm);
      sel.addEventListener('change', () => {
        if (sel.value === '') return;
        model.send({ type: 'relabel', index: c.index, slot: Number(sel.value) });
      });
      card.appendChild(sel);
      grid.appendChild(card);
    }
  };
  prev.addEventListener('click', () => { model.set('page', Math.max(0, model.get('page') - 1)); model.save_changes(); });
  next.addEventListener('click', () => { model.set('page', model.get('page') + 1); model.save_changes(); });
  const names = ['change:cards', 'change:classes', 'change:page', 'change:pages', 'change:total',
    'change:hidden', 'change:title'];
  for (const e of names) model.on(e, renderCards);
  renderCards();
  return () => {
    for (const e of names) model.off(e, renderCards);
    releaseKeys();
    dispose();
    thumbs.dispose();
  };
}

export default { render };
