// Scoped API keys: create one for chosen instances and permissions (the raw key shown once), see each key's
// per-instance grants, revoke.

import { api, get, post } from './api.js';
import { announce, checkbox, confirmDialog, errorBox, field, formatTime, h, notice, replace } from './dom.js';

const PERMISSIONS = [
  ['read', 'see the instance and its status, usage'],
  ['interact', 'chat with the agent'],
  ['configure', 'change its settings and skills'],
  ['files', 'read and write its files'],
  ['channels', 'manage its messaging channels'],
];

export function keysPage(ctx) {
  const body = h('tbody');
  const message = h('div');
  const created = h('div', { 'aria-live': 'polite' });
  const detail = h('div', { 'aria-live': 'polite' });
  let instances = [];

  const load = async () => {
    try {
      const keys = await get('/v1/keys', { signal: ctx.signal });
      replace(body, keys.length ? keys.map((key) => h('tr', { 'data-key': key.id },
        h('th', { scope: 'row' }, key.name),
        h('td', {}, h('code', {}, `${key.key_prefix}…`)),
        h('td', {}, key.is_active ? 'active' : 'revoked or expired'),
        h('td', { class: 'wide' }, formatTime(key.created_at)),
        h('td', { class: 'wide' }, formatTime(key.last_used_at)),
        h('td', {}, h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => show(key), 'aria-label': `Details of ${key.name}` }, 'Details'),
          key.is_active ? h('button', { type: 'button', class: 'danger', onclick: () => revoke(key), 'aria-label': `Revoke ${key.name}` }, 'Revoke') : null))))
        : h('tr', {}, h('td', { colspan: 6 }, 'No scoped keys yet.')));
    } catch (err) {
      if (err.name !== 'AbortError') notice(message, err.message, 'error');
    }
  };

  const show = async (key) => {
    try {
      const full = await get(`/v1/keys/${encodeURIComponent(key.id)}`);
      const names = new Map(instances.map((i) => [i.id, i.name]));
      replace(detail, h('h2', {}, `Key “${full.name}”`),
        h('p', {}, `Expires: ${full.expires_at ? formatTime(full.expires_at) : 'never'}`),
        h('ul', {}, full.instances.length ? full.instances.map((g) => h('li', {},
          h('strong', {}, names.get(g.instance_id) ?? g.instance_id), `: ${inOrder(g.permissions).join(', ')}`))
          : h('li', {}, 'No instance (its instances were deleted).')));
    } catch (err) {
      replace(detail, errorBox(err.message));
    }
  };

  const revoke = async (key) => {
    if (!await confirmDialog(`Revoke “${key.name}” (${key.key_prefix}…)? Everything using it stops working at once.`, 'Revoke key')) return;
    try {
      await api('DELETE', `/v1/keys/${encodeURIComponent(key.id)}`);
      announce(`Key ${key.name} revoked.`);
      load();
    } catch (err) {
      notice(message, err.message, 'error');
    }
  };

  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 128 });
  const expires = h('input', { type: 'datetime-local', name: 'expires_at' });
  const instanceBoxes = h('fieldset', { class: 'choices' }, h('legend', {}, 'Instances'));
  const permissionBoxes = h('fieldset', { class: 'choices' }, h('legend', {}, 'Permissions on each chosen instance'),
    PERMISSIONS.map(([perm, what]) => checkbox(`${perm}: ${what}`, { name: 'permission', value: perm, checked: perm === 'read' || perm === 'interact' })));

  const create = async (event) => {
    event.preventDefault();
    const checked = (set) => [...set.querySelectorAll('input:checked')].map((i) => i.value);
    const body = { name: name.value.trim(), instance_ids: checked(instanceBoxes), permissions: checked(permissionBoxes) };
    if (body.instance_ids.length === 0 || body.permissions.length === 0) {
      replace(created, errorBox('Choose at least one instance and one permission.'));
      return;
    }
    if (expires.value) body.expires_at = new Date(expires.value).toISOString();
    try {
      const key = await post('/v1/keys', body);
      const raw = h('code', { class: 'secret', id: 'raw-key', tabindex: 0 }, key.raw_key);
      const copy = h('button', { type: 'button', class: 'secondary', onclick: async () => {
        try { await navigator.clipboard.writeText(key.raw_key); copy.textContent = 'Copied'; } catch { getSelection().selectAllChildren(raw); }
      } }, 'Copy');
      replace(created, h('div', { class: 'once' },
        h('p', {}, `Key “${key.name}” created. This is the only time it is shown: copy it now.`),
        raw, copy,
        h('p', { class: 'hint' }, `To sign in with it, give these instance IDs too: ${body.instance_ids.join(' ')}`)));
      raw.focus();
      name.value = '';
      load();
    } catch (err) {
      replace(created, errorBox(err.message));
    }
  };

  get('/v1/instances', { signal: ctx.signal }).then((list) => {
    instances = list;
    append(instanceBoxes, list.length ? list.map((i) => checkbox(`${i.name} (${i.id.slice(0, 8)})`, { name: 'instance', value: i.id }))
      : h('p', {}, 'No instances yet.'));
  }).catch((err) => notice(message, err.message, 'error'));

  load();
  return h('section', {},
    h('h1', {}, 'API keys'),
    h('p', {}, 'Scoped keys reach only the instances and permissions they are given; they can never create, start, stop or delete instances.'),
    h('form', { class: 'stack', onsubmit: create, 'aria-label': 'Create a scoped key' },
      h('h2', {}, 'New scoped key'),
      field('Name', name), instanceBoxes, permissionBoxes,
      field('Expires (optional)', expires, 'Leave empty for a key that never expires.'),
      h('button', { type: 'submit' }, 'Create key')),
    created,
    message,
    h('h2', {}, 'Keys'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Scoped keys'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Prefix'),
        h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col', class: 'wide' }, 'Created'),
        h('th', { scope: 'col', class: 'wide' }, 'Last used'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      body)),
    detail);
}

// Permissions in the order the page lists them, whatever order the API stores them in.
function inOrder(permissions) {
  const rank = (p) => PERMISSIONS.findIndex(([name]) => name === p);
  return [...permissions].sort((a, b) => rank(a) - rank(b));
}

function append(el, children) {
  el.append(...[children].flat().filter(Boolean));
}
