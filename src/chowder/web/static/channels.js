// Messaging channels: which are on, setting one up with the fields its info endpoint asks for, its live status,
// WhatsApp's login QR code, approving a DM pairing code, switching one off.

import { get, instancePath, post } from './api.js';
import { announce, errorBox, field, h, notice, replace } from './dom.js';

const SECRET = /token|secret|password|key/i;

export function channelsTab(ctx, instance) {
  const body = h('tbody');
  const detail = h('div', { class: 'channel-detail', 'aria-live': 'polite' });
  const message = h('div');
  const base = (channel, tail = '') => instancePath(instance.id, `/channels/${encodeURIComponent(channel)}${tail}`);

  const load = async () => {
    try {
      const channels = await get(instancePath(instance.id, '/channels'), { signal: ctx.signal });
      replace(body, channels.map((c) => h('tr', { 'data-channel': c.channel },
        h('th', { scope: 'row' }, c.channel),
        h('td', {}, c.connection_type),
        h('td', {}, c.enabled ? 'on' : 'off'),
        h('td', {}, h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => setup(c.channel),
            'aria-label': `${c.enabled ? 'Settings of' : 'Connect'} ${c.channel}` }, c.enabled ? 'Settings' : 'Connect'),
          h('button', { type: 'button', class: 'secondary', onclick: () => status(c.channel),
            'aria-label': `Status of ${c.channel}` }, 'Status'),
          c.enabled ? h('button', { type: 'button', class: 'danger', onclick: () => disconnect(c.channel),
            'aria-label': `Disconnect ${c.channel}` }, 'Disconnect') : null)))));
    } catch (err) {
      if (err.name !== 'AbortError') notice(message, err.message, 'error');
    }
  };

  const status = async (channel) => {
    try {
      const s = await get(base(channel, '/status'), { signal: ctx.signal });
      replace(detail, h('h3', {}, `${channel}: status`),
        h('p', {}, `Enabled: ${s.enabled ? 'yes' : 'no'} · connected: ${s.connected ? 'yes' : 'no'}`),
        Object.keys(s.details ?? {}).length ? h('pre', { class: 'file-content' }, JSON.stringify(s.details, null, 2)) : null,
        pairForm(channel));
      return s;
    } catch (err) {
      replace(detail, errorBox(err.message));
      return null;
    }
  };

  const setup = async (channel) => {
    let info;
    try {
      info = await get(base(channel));
    } catch (err) {
      replace(detail, errorBox(err.message));
      return;
    }
    const inputs = Object.entries(info.required_fields).map(([name, description]) => {
      const input = h('input', { type: SECRET.test(name) ? 'password' : 'text', name, required: true, autocomplete: 'off', spellcheck: 'false' });
      return { name, input, el: field(name, input, description) };
    });
    const out = h('div', { 'aria-live': 'polite' });
    const submit = async (event) => {
      event.preventDefault();
      const config = Object.fromEntries(inputs.map(({ name, input }) => [name, input.value]));
      replace(out, h('p', { class: 'info' }, 'Connecting… (a first connect may restart the gateway: up to ~30 s)'));
      try {
        const result = await post(base(channel, '/connect'), { config });
        const parts = [h('p', { class: 'success' }, result.message ?? `Status: ${result.status}`)];
        if (result.qr_image_base64) {
          parts.push(h('img', { class: 'qr', src: `data:image/png;base64,${result.qr_image_base64}`,
            alt: `${channel} login QR code: scan it with the app on your phone` }));
          parts.push(h('p', {}, 'Waiting for the scan…'));
          ctx.every(3000, async () => {
            const s = await get(base(channel, '/status'), { signal: ctx.signal });
            if (s.connected) { replace(out, h('p', { class: 'success' }, `${channel} connected.`)); load(); }
          });
        }
        replace(out, parts);
        announce(`${channel}: ${result.status}.`);
        load();
      } catch (err) {
        replace(out, errorBox(err.message));
      }
    };
    replace(detail,
      h('h3', {}, `Connect ${channel}`),
      h('form', { onsubmit: submit, 'aria-label': `Connect ${channel}` },
        inputs.length ? inputs.map((i) => i.el) : h('p', {}, info.connection_type === 'interactive'
          ? 'No fields needed: connecting shows a QR code to scan.' : 'No fields needed.'),
        h('button', { type: 'submit' }, 'Connect')),
      out);
    inputs[0]?.input.focus();
  };

  const disconnect = async (channel) => {
    try {
      await post(base(channel, '/disconnect'));
      announce(`${channel} disconnected.`);
      load();
    } catch (err) {
      notice(message, err.message, 'error');
    }
  };

  const pairForm = (channel) => {
    const code = h('input', { type: 'text', name: 'code', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9\\-]{0,31}', autocomplete: 'off' });
    const out = h('div', { 'aria-live': 'polite' });
    const submit = async (event) => {
      event.preventDefault();
      try {
        const paired = await post(base(channel, '/pair'), { code: code.value.trim() });
        replace(out, h('p', { class: 'success' }, paired.output || 'Paired.'));
      } catch (err) {
        replace(out, errorBox(err.message));
      }
    };
    return h('form', { class: 'inline', onsubmit: submit, 'aria-label': `Approve a ${channel} pairing code` },
      field('Pairing code', code, 'The code the bot sent someone who messaged it.'),
      h('button', { type: 'submit', class: 'secondary' }, 'Approve'), out);
  };

  load();
  return h('div', {},
    message,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Channels'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'Type'),
        h('th', { scope: 'col' }, 'Enabled'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      body)),
    detail);
}

