// One instance: its header (live status, lifecycle actions) and tabs for chat, files, channels, skills, usage.

import { ApiError, get, instancePath } from './api.js';
import { chatTab } from './chat.js';
import { channelsTab } from './channels.js';
import { h, notice, replace, statusBadge } from './dom.js';
import { filesTab } from './files.js';
import { lifecycleActions, progressText } from './instances.js';
import { skillsTab } from './skills.js';
import { usageTab } from './usage.js';

const TABS = [
  ['chat', 'Chat', chatTab],
  ['files', 'Files', filesTab],
  ['channels', 'Channels', channelsTab],
  ['skills', 'Skills', skillsTab],
  ['usage', 'Usage', usageTab],
];

export function instancePage(ctx, id, tab) {
  const selected = TABS.find(([name]) => name === tab) ?? TABS[0];
  const title = h('h1', {}, 'Instance');
  const status = h('p', { class: 'instance-status', 'aria-live': 'polite' });
  const facts = h('dl', { class: 'facts' });
  const actions = h('div');
  const message = h('div');
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel', id: 'tab-panel', 'aria-labelledby': `tab-${selected[0]}` });
  let shown = null;
  let pending = '';
  let latest = null;

  const showStatus = () => {
    if (!latest) return;
    const note = pending || progressText(latest);
    replace(status, statusBadge(latest.status), note ? ` ${note}` : '');
  };

  const load = async () => {
    let instance;
    try {
      instance = await get(instancePath(id), { signal: ctx.signal });
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        // Granted without `read`: the tabs it holds permissions for still work.
        instance = { id, name: id, status: 'unknown' };
      } else if (err instanceof ApiError && err.status === 404) {
        replace(panel);
        notice(message, 'This instance does not exist, was deleted, or is not reachable with this key.', 'error');
        return;
      } else {
        throw err;
      }
    }
    const changed = latest?.status !== instance.status;
    latest = instance;
    title.textContent = instance.name;
    showStatus();
    if (changed) {
      replace(facts,
        fact('ID', h('code', {}, instance.id)),
        instance.model_provider ? fact('Model provider', instance.model_provider) : null,
        instance.sandbox_provider ? fact('Sandbox', instance.sandbox_provider) : null,
        instance.openclaw_version ? fact('OpenClaw', instance.openclaw_version) : null);
      replace(actions, lifecycleActions(instance, {
        onDone: (err) => { if (err) notice(message, err.message, 'error'); load(); },
        onPending: (text) => { pending = text; showStatus(); },
        onDeleted: () => { location.hash = '#/instances'; },
      }));
    }
    // The tab is built again when the instance starts or stops running (what it can do changes).
    const running = instance.status === 'running' || instance.status === 'unknown';
    if (shown !== running) {
      shown = running;
      replace(panel, running
        ? selected[2](ctx, instance)
        : h('p', { class: 'info' }, `The instance is ${instance.status}; ${selected[1].toLowerCase()} needs it running.`));
    }
  };
  ctx.every(3000, load);
  ctx.every(1000, async () => showStatus());

  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Instance sections' },
    TABS.map(([name, label]) => h('a', {
      role: 'tab',
      id: `tab-${name}`,
      href: `#/instances/${encodeURIComponent(id)}/${name}`,
      'aria-selected': name === selected[0] ? 'true' : 'false',
      'aria-controls': 'tab-panel',
    }, label)));
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, '← All instances')),
    title, status, facts, actions, message, tabs, panel);
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}
