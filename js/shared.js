// Helpers shared by the map and the gallery. Everything that shows item content or a
// label name goes through textContent: names and texts are data, never markup.

/** An element with optional class and text (set as text, never parsed as HTML). */
export function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

/**
 * Request/reply over the widget's custom messages. Python answers a message that
 * carries an `id` with a message carrying the same `id` (and binary buffers).
 */
export function createRequester(model) {
  let next = 1;
  const pending = new Map();
  const onMessage = (msg, buffers) => {
    if (msg && msg.id !== undefined && pending.has(msg.id)) {
      const { resolve } = pending.get(msg.id);
      pending.delete(msg.id);
      resolve({ msg, buffers: buffers || [] });
    }
  };
  model.on('msg:custom', onMessage);
  const request = (content, timeoutMs = 30000) =>
    new Promise((resolve, reject) => {
      const id = `${Date.now().toString(36)}-${next++}`;
      pending.set(id, { resolve });
      model.send({ ...content, id });
      setTimeout(() => {
        if (pending.has(id)) {
          pending.delete(id);
          reject(new Error(`no reply to ${content.type} within ${timeoutMs} ms`));
        }
      }, timeoutMs);
    });
  const dispose = () => {
    model.off('msg:custom', onMessage);
    pending.clear();
  };
  return { request, dispose };
}

/** A cache of thumbnails as blob: URLs, fetched once per item over the widget's messages. */
export function createThumbCache(request, limit = 512) {
  const urls = new Map(); // index -> Promise<{url, text, kind}>
  const get = (index) => {
    if (urls.has(index)) return urls.get(index);
    const p = request({ type: 'thumb', index }).then(({ msg, buffers }) => {
      if (msg.error) throw new Error(msg.error);
      let url = null;
      if (buffers.length > 0) {
        const view = buffers[0];
        const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        url = URL.createObjectURL(new Blob([bytes], { type: msg.mime || 'image/png' }));
      }
      return { url, text: msg.text || '', kind: msg.kind, label: msg.label || '' };
    });
    urls.set(index, p);
    p.catch(() => urls.delete(index));
    if (urls.size > limit) {
      // Forget the oldest entry; its blob URL is released when its promise settles.
      const [oldKey, oldP] = urls.entries().next().value;
      urls.delete(oldKey);
      oldP.then((t) => t.url && URL.revokeObjectURL(t.url)).catch(() => {});
    }
    return p;
  };
  const dispose = () => {
    for (const p of urls.values()) p.then((t) => t.url && URL.revokeObjectURL(t.url)).catch(() => {});
    urls.clear();
  };
  return { get, dispose };
}

/** Typed-array view over a buffer received from Python (a DataView). */
export function typed(view, Ctor) {
  const buf = view.buffer ? view : new DataView(view);
  return new Ctor(buf.buffer, buf.byteOffset, buf.byteLength / Ctor.BYTES_PER_ELEMENT);
}

/**
 * Keyboard actions shared by map and gallery: 1-9 label, 0/Delete/Backspace remove,
 * Ctrl/Cmd+Z undo, Shift+Ctrl/Cmd+Z (or Ctrl+Y) redo. Returns the message or null.
 */
export function keyAction(event) {
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key;
  if (mod && (key === 'z' || key === 'Z')) return { type: event.shiftKey ? 'redo' : 'undo' };
  if (mod && (key === 'y' || key === 'Y')) return { type: 'redo' };
  if (mod || event.altKey) return null;
  if (/^[1-9]$/.test(key)) return { type: 'label_key', key: Number(key) };
  if (key === '0' || key === 'Delete' || key === 'Backspace') return { type: 'remove_labels' };
  return null;
}

/**
 * Make an element keyboard-focusable and keep JupyterLab's own shortcuts (1-7 make
 * headings in command mode, Z undoes cell deletion) from firing while it has focus.
 */
export function captureKeys(el, model) {
  el.tabIndex = 0;
  el.setAttribute('data-lm-suppress-shortcuts', 'true');
  const onKey = (event) => {
    const t = event.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    const action = keyAction(event);
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    model.send(action);
  };
  el.addEventListener('keydown', onKey);
  return () => el.removeEventListener('keydown', onKey);
}
