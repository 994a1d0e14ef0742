// Building the page without HTML strings: every text a user, an agent or the API supplied goes in as a text
// node (textContent), never through innerHTML, so none of it can become markup or script.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) {
      // Handlers are functions only: an attribute string would be script (and the CSP refuses it anyway).
      if (typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'value' || name === 'checked') {
      el[name] = value;
    } else {
      el.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let fieldIds = 0;

// A labelled form field: the label names the control for screen readers and a hint is tied by aria-describedby.
export function field(label, control, hint) {
  const id = control.id || `f${++fieldIds}`;
  control.id = id;
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('small', { id: hintId, class: 'hint' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

export function checkbox(label, props) {
  return h('label', { class: 'check' }, h('input', { type: 'checkbox', ...props }), ' ', label);
}

// Polite announcements for screen readers (status changes, results); errors are shown where they happened.
export function announce(message) {
  const region = document.getElementById('status');
  region.textContent = '';
  setTimeout(() => { region.textContent = message; }, 50);
}

export function errorBox(message) {
  return h('p', { class: 'error', role: 'alert' }, message);
}

export function notice(el, message, kind = 'info') {
  replace(el, message ? h('p', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, message) : null);
}

// A modal confirmation (native <dialog>: focus trapped, Escape cancels). Resolves true on confirm.
export function confirmDialog(message, action) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'secondary', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'submit', class: 'danger', value: 'ok' }, action);
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-text' },
      h('form', { method: 'dialog' }, h('p', { id: 'confirm-text' }, message), h('div', { class: 'row' }, cancel, ok)));
    cancel.addEventListener('click', () => dialog.close('cancel'));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(dialog.returnValue === 'ok'); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function formatElapsed(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function statusBadge(status) {
  return h('span', { class: `badge ${status}` }, status);
}
