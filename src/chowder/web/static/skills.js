// Skills: the ones the instance knows (or only the ready ones), install from ClawHub, switch one on or off.

import { api, get, instancePath, post } from './api.js';
import { announce, checkbox, errorBox, field, h, notice, replace } from './dom.js';

export function skillsTab(ctx, instance) {
  const body = h('tbody');
  const message = h('div', { 'aria-live': 'polite' });
  const eligible = checkbox('Only skills ready to use', { name: 'eligible_only' });
  const skill = (name, tail = '') => instancePath(instance.id, `/skills/${encodeURIComponent(name)}${tail}`);

  const load = async () => {
    notice(message, 'Loading skills (this asks the agent and can take a few seconds)…');
    try {
      const only = eligible.querySelector('input').checked;
      const skills = await get(instancePath(instance.id, `/skills?eligible_only=${only}`), { signal: ctx.signal });
      replace(body, skills.length ? skills.map((s) => h('tr', {},
        h('th', { scope: 'row' }, s.name),
        h('td', { class: 'wide' }, s.description),
        h('td', {}, s.source),
        h('td', {}, s.ready ? 'ready' : 'not ready'),
        h('td', {}, h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => toggle(s.name, true), 'aria-label': `Enable ${s.name}` }, 'Enable'),
          h('button', { type: 'button', class: 'secondary', onclick: () => toggle(s.name, false), 'aria-label': `Disable ${s.name}` }, 'Disable')))))
        : h('tr', {}, h('td', { colspan: 5 }, 'No skills.')));
      notice(message, '');
    } catch (err) {
      if (err.name !== 'AbortError') notice(message, err.message, 'error');
    }
  };

  const toggle = async (name, enabled) => {
    try {
      await api('PATCH', skill(name), { json: { enabled } });
      announce(`${name} ${enabled ? 'enabled' : 'disabled'}.`);
      load();
    } catch (err) {
      notice(message, err.message, 'error');
    }
  };

  const slug = h('input', { type: 'text', name: 'slug', required: true, spellcheck: 'false', placeholder: 'web-search' });
  const out = h('div', { 'aria-live': 'polite' });
  const install = async (event) => {
    event.preventDefault();
    replace(out, h('p', { class: 'info' }, 'Installing from ClawHub…'));
    try {
      const result = await post(instancePath(instance.id, '/skills/install'), { slug: slug.value.trim() });
      replace(out, h('p', { class: 'success' }, result.message),
        result.required_env?.length ? h('p', {}, `Still needed: ${result.required_env.join(', ')}`) : null,
        h('pre', { class: 'file-content' }, result.output));
      load();
    } catch (err) {
      replace(out, errorBox(err.message));
    }
  };

  eligible.querySelector('input').addEventListener('change', load);
  load();
  return h('div', {},
    h('form', { class: 'inline', onsubmit: install, 'aria-label': 'Install a skill' },
      field('ClawHub skill', slug), h('button', { type: 'submit' }, 'Install')),
    out,
    eligible,
    message,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Skills'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Skill'), h('th', { scope: 'col', class: 'wide' }, 'Description'),
        h('th', { scope: 'col' }, 'Source'), h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      body)));
}
