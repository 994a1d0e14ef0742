// The instances list (live status, polled), creating one with its provisioning progress, and the lifecycle
// actions (start, stop, delete with confirmation) that the instance page reuses.

import { api, ApiError, get, instancePath, post, session } from './api.js';
import {
  announce, confirmDialog, field, formatElapsed, formatTime, h, notice, statusBadge,
} from './dom.js';

const POLL_MS = 2000;
// When this page first saw an instance provisioning (a start or restart: its created_at is older).
const provisioningSince = new Map();

export const DEFAULT_MODELS = {
  anthropic: 'claude-sonnet-4-20250514',
  openai: 'gpt-4o',
  gemini: 'gemini-2.0-flash',
};

// An org key lists the org's instances; a scoped key reads the ones it was issued for, one by one.
export async function visibleInstances(signal) {
  if (session.isOrg) return get('/v1/instances', { signal });
  const found = [];
  for (const id of session.instanceIds) {
    try {
      found.push(await get(instancePath(id), { signal }));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      // Granted without `read` (403): known by id only. Gone (404): left out.
      if (err.status === 403) found.push({ id, name: id, status: 'unknown', unreadable: true });
    }
  }
  return found;
}

// "provisioning · 23 s", with the engine's current note (e.g. waiting for memory) when it gave one.
export function progressText(instance, now = Date.now()) {
  if (instance.status !== 'provisioning') {
    provisioningSince.delete(instance.id);
    return instance.status === 'error' ? (instance.error_message ?? '') : (instance.power && instance.power !== 'awake' ? instance.power : '');
  }
  if (!provisioningSince.has(instance.id)) {
    // A first boot counts from the create; a start or restart seen happening, from when it was seen.
    const created = Date.parse(instance.created_at);
    const fresh = Number.isFinite(created) && now - created < 10 * 60_000;
    provisioningSince.set(instance.id, fresh ? Math.min(created, now) : now);
  }
  const elapsed = formatElapsed(now - provisioningSince.get(instance.id));
  return `booting the gateway · ${elapsed}${instance.error_message ? ` · ${instance.error_message}` : ''}`;
}

// Start, stop and delete buttons for an org key (a scoped key may never call them). `onDone` reloads.
export function lifecycleActions(instance, { onDone, onPending, onDeleted }) {
  if (!session.isOrg) return null;
  const run = async (button, label, call) => {
    const started = Date.now();
    const tick = setInterval(() => onPending?.(`${label} · ${formatElapsed(Date.now() - started)}`), 1000);
    button.disabled = true;
    onPending?.(`${label}…`);
    try {
      await call();
      announce(`${instance.name}: ${label.toLowerCase()} done.`);
    } catch (err) {
      onPending?.('');
      announce(`${instance.name}: ${err.message}`);
      onDone?.(err);
      return;
    } finally {
      clearInterval(tick);
      button.disabled = false;
    }
    onPending?.('');
    onDone?.();
  };
  const start = h('button', { type: 'button', class: 'secondary', disabled: instance.status !== 'stopped',
    onclick: () => run(start, 'Starting', () => post(instancePath(instance.id, '/start'))) }, 'Start');
  const stop = h('button', { type: 'button', class: 'secondary', disabled: instance.status !== 'running',
    onclick: () => run(stop, 'Stopping', () => post(instancePath(instance.id, '/stop'))) }, 'Stop');
  const remove = h('button', { type: 'button', class: 'danger', onclick: async () => {
    const sure = await confirmDialog(`Delete “${instance.name}”? Its sandbox, files and sessions are destroyed; this cannot be undone.`, 'Delete instance');
    if (!sure) return;
    try {
      await api('DELETE', instancePath(instance.id));
      announce(`${instance.name} deleted.`);
      onDeleted?.();
    } catch (err) {
      announce(err.message);
      onDone?.(err);
    }
  } }, 'Delete');
  start.setAttribute('aria-label', `Start ${instance.name}`);
  stop.setAttribute('aria-label', `Stop ${instance.name}`);
  remove.setAttribute('aria-label', `Delete ${instance.name}`);
  return h('div', { class: 'actions' }, start, stop, remove);
}

export function instancesPage(ctx) {
  const table = h('tbody');
  const message = h('div');
  const rows = new Map();
  const lastStatus = new Map();
  const pending = new Map();
  let latest = [];
  const empty = h('p', { class: 'empty', hidden: true },
    session.isOrg ? 'No instances yet: create one above.' : 'This key reaches no instance.');

  const render = () => {
    const now = Date.now();
    const seen = new Set();
    for (const instance of latest) {
      seen.add(instance.id);
      let row = rows.get(instance.id);
      const key = `${instance.status}|${instance.name}|${instance.power}`;
      if (!row || row.key !== key) {
        const cells = rowCells(instance);
        if (row) row.el.replaceWith(cells.el); else table.append(cells.el);
        row = { ...cells, key };
        rows.set(instance.id, row);
      }
      const note = pending.get(instance.id) || progressText(instance, now);
      if (row.note.textContent !== note) row.note.textContent = note;
      if (lastStatus.has(instance.id) && lastStatus.get(instance.id) !== instance.status) {
        announce(`${instance.name} is now ${instance.status}.`);
      }
      lastStatus.set(instance.id, instance.status);
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) { row.el.remove(); rows.delete(id); }
    }
    // Rows in the listing's order (newest first); moved only when out of order (a move would drop the focus).
    const order = latest.map((instance) => rows.get(instance.id).el);
    if (order.some((el, i) => table.children[i] !== el)) table.append(...order);
    empty.hidden = latest.length > 0;
  };

  const rowCells = (instance) => {
    const note = h('span', { class: 'note' });
    const link = instance.unreadable
      ? h('span', {}, instance.id)
      : h('a', { href: `#/instances/${encodeURIComponent(instance.id)}` }, instance.name);
    const actions = lifecycleActions(instance, {
      onDone: (err) => { if (err) notice(message, err.message, 'error'); refresh(); },
      onPending: (text) => { pending.set(instance.id, text); render(); },
      onDeleted: refresh,
    });
    const el = h('tr', { 'data-instance': instance.id },
      h('th', { scope: 'row' }, link),
      h('td', {}, statusBadge(instance.status), ' ', note),
      h('td', { class: 'wide' }, instance.model_provider ?? ''),
      h('td', { class: 'wide' }, formatTime(instance.created_at)),
      h('td', {}, actions));
    return { el, note };
  };

  const refresh = async () => {
    try {
      latest = await visibleInstances(ctx.signal);
      render();
    } catch (err) {
      if (err.name !== 'AbortError') notice(message, err.message, 'error');
    }
  };
  ctx.every(POLL_MS, refresh);
  // The elapsed time ticks between polls.
  ctx.every(1000, async () => render());

  return h('section', {},
    h('h1', {}, 'Instances'),
    session.isOrg ? createForm(message, refresh) : h('p', { class: 'info' }, 'Signed in with a scoped key: only the instances it was issued for are shown.'),
    message,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'instances' },
        h('caption', { class: 'visually-hidden' }, 'Instances, newest first; status updates live'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col', class: 'wide' }, 'Model provider'), h('th', { scope: 'col', class: 'wide' }, 'Created'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        table)),
    empty);
}

function createForm(message, refresh) {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 128, value: 'my-agent' });
  const provider = h('select', { name: 'model_provider' },
    Object.keys(DEFAULT_MODELS).map((p) => h('option', { value: p }, p)));
  const submit = async (event) => {
    event.preventDefault();
    const button = event.submitter ?? event.target.querySelector('button');
    button.disabled = true;
    try {
      const instance = await post('/v1/instances', { name: name.value.trim(), model_provider: provider.value });
      notice(message, `Creating “${instance.name}”: its gateway is booting (usually 20–60 s). Its status updates below.`);
      announce(`${instance.name} created; provisioning.`);
      await refresh();
    } catch (err) {
      notice(message, err.message, 'error');
    } finally {
      button.disabled = false;
    }
  };
  return h('form', { class: 'inline', onsubmit: submit, 'aria-label': 'Create an instance' },
    field('Name', name), field('Model provider', provider),
    h('button', { type: 'submit' }, 'Create instance'));
}

