// The dashboard's shell: sign-in (and sign-up), navigation, and a hash router that gives each page a context
// whose polls and requests stop when the user leaves it.

import { api, ApiError, get, instancePath, session, whenUnauthorized } from './api.js';
import { announce, errorBox, field, h, replace } from './dom.js';
import { instancesPage } from './instances.js';
import { instancePage } from './instance.js';
import { keysPage } from './keys.js';
import { organizationPage } from './organization.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let current = null;
let signInMessage = '';
let flash = ''; // shown once on the next page

function context() {
  const controller = new AbortController();
  const timers = [];
  const ctx = {
    signal: controller.signal,
    get live() { return !controller.signal.aborted; },
    // Runs `fn` now and every `ms` until the page is left; a slow call is never overlapped by the next.
    every(ms, fn) {
      let timer = null;
      const tick = async () => {
        if (!ctx.live) return;
        try { await fn(); } catch (err) { if (err.name !== 'AbortError') console.warn(err); }
        if (ctx.live) { timer = setTimeout(tick, ms); timers.push(timer); }
      };
      tick();
    },
    dispose() { controller.abort(); timers.forEach(clearTimeout); },
  };
  return ctx;
}

function renderNav() {
  const route = location.hash || '#/instances';
  const link = (href, label) => h('a', { href, 'aria-current': route.startsWith(href) ? 'page' : null }, label);
  if (!session.key) { replace(nav); return; }
  replace(nav,
    link('#/instances', 'Instances'),
    session.isOrg ? link('#/keys', 'API keys') : null,
    session.isOrg ? link('#/organization', 'Organization') : null,
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
}

function signOut() {
  session.signOut();
  signInMessage = 'Signed out.';
  location.hash = '#/signin';
}

whenUnauthorized(() => {
  session.signOut();
  signInMessage = 'Your API key is no longer accepted (revoked, expired or unknown). Sign in again.';
  location.hash = '#/signin';
  route();
});

async function route() {
  current?.dispose();
  current = context();
  const hash = location.hash.replace(/^#/, '') || '/instances';
  const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
  if (!session.key && parts[0] !== 'signin') { location.hash = '#/signin'; return; }
  renderNav();
  let page;
  if (parts[0] === 'signin') page = signInPage();
  else if (parts[0] === 'instances' && parts[1]) page = instancePage(current, parts[1], parts[2] ?? 'chat');
  else if (parts[0] === 'keys' && session.isOrg) page = keysPage(current);
  else if (parts[0] === 'organization' && session.isOrg) page = organizationPage(current);
  else page = instancesPage(current);
  replace(main, page);
  const heading = main.querySelector('h1');
  if (flash && heading) {
    heading.after(h('p', { class: 'info', role: 'status' }, flash));
    flash = '';
  }
  document.title = heading ? `${heading.textContent} · Chowder` : 'Chowder';
  main.focus({ preventScroll: true });
}

// Which instances a key may see: an org key answers GET /v1/organization; a scoped key is checked on each id it
// was issued for (404: not in its grant; 403: granted without `read`, still reachable for what it holds).
async function checkKey(key, ids) {
  if (key.startsWith('chd_org_')) {
    await get('/v1/organization', { key });
    return { granted: [], refused: [] };
  }
  if (ids.length === 0) {
    throw new Error('A scoped key cannot list instances: enter the ID of each instance it was issued for.');
  }
  const granted = [];
  const refused = [];
  for (const id of ids) {
    try {
      await get(instancePath(id), { key });
      granted.push(id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) granted.push(id);
      else if (err instanceof ApiError && err.status === 404) refused.push(id);
      else throw err;
    }
  }
  if (granted.length === 0) throw new Error('This key reaches none of the instances given.');
  return { granted, refused };
}

function signInPage() {
  const keyInput = h('input', { type: 'password', name: 'key', autocomplete: 'off', required: true, spellcheck: 'false' });
  const idsInput = h('input', { type: 'text', name: 'instances', autocomplete: 'off', spellcheck: 'false' });
  const message = h('div', { 'aria-live': 'polite' }, signInMessage ? h('p', { class: 'info' }, signInMessage) : null);
  signInMessage = '';
  const submit = async (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    const ids = idsInput.value.split(/[\s,]+/).filter(Boolean);
    replace(message, h('p', { class: 'info' }, 'Checking the key…'));
    try {
      const { granted, refused } = await checkKey(key, ids);
      session.signIn(key, granted);
      if (refused.length) flash = `Not reachable with this key: ${refused.join(', ')}`;
      announce('Signed in.');
      location.hash = '#/instances';
    } catch (err) {
      replace(message, errorBox(err instanceof ApiError && err.status === 401 ? 'This key is not accepted.' : err.message));
    }
  };
  return h('section', { class: 'narrow' },
    h('h1', {}, 'Sign in'),
    h('form', { onsubmit: submit, 'aria-label': 'Sign in with an API key' },
      field('API key', keyInput, 'An organization key (chd_org_…) or a scoped key (chd_sk_…). It is kept in this browser tab only, until you sign out or close it.'),
      field('Instance IDs (scoped keys only)', idsInput, 'A scoped key cannot list instances: give the IDs it was issued for, separated by spaces or commas.'),
      h('button', { type: 'submit' }, 'Sign in')),
    message,
    signUpForm());
}

function signUpForm() {
  const name = h('input', { type: 'text', name: 'org', required: true, maxlength: 128, autocomplete: 'organization' });
  const out = h('div', { 'aria-live': 'polite' });
  const submit = async (event) => {
    event.preventDefault();
    try {
      const body = await api('POST', '/v1/organization/signup', { json: { name: name.value.trim() }, key: '' });
      const keyText = h('code', { class: 'secret', id: 'new-org-key' }, body.api_key);
      replace(out, h('div', { class: 'once' },
        h('p', {}, 'Your organization key, shown only this once. Store it somewhere safe now:'),
        keyText,
        h('button', { type: 'button', onclick: () => { session.signIn(body.api_key); location.hash = '#/instances'; } },
          'Continue signed in')));
      keyText.focus?.();
    } catch (err) {
      replace(out, errorBox(err.message));
    }
  };
  return h('details', { class: 'signup' },
    h('summary', {}, 'No key yet? Create an organization'),
    h('form', { onsubmit: submit },
      field('Organization name', name),
      h('button', { type: 'submit', class: 'secondary' }, 'Create organization')),
    out);
}

window.addEventListener('hashchange', route);
route();

