// The organization: its subscription (tier, limit, Stripe checkout and portal when the server has billing),
// and the model provider keys its instances use.

import { api, get, post } from './api.js';
import { errorBox, field, h, notice, replace } from './dom.js';

export function organizationPage(ctx) {
  const org = h('div');
  const plan = h('div');
  const message = h('div');

  const load = async () => {
    try {
      const [o, sub, config] = await Promise.all([
        get('/v1/organization', { signal: ctx.signal }),
        get('/v1/subscription', { signal: ctx.signal }),
        fetch('config.json', { signal: ctx.signal }).then((r) => r.json()),
      ]);
      replace(org, h('dl', { class: 'facts' },
        h('dt', {}, 'Name'), h('dd', {}, o.name),
        h('dt', {}, 'ID'), h('dd', {}, h('code', {}, o.id)),
        h('dt', {}, 'Model keys set'), h('dd', {}, o.model_providers.length ? o.model_providers.join(', ') : 'none')),
        config.dev_model ? h('p', { class: 'info' }, 'This server runs the built-in dev model: instances answer without any provider key.') : null);
      renderPlan(sub, config.billing);
    } catch (err) {
      if (err.name !== 'AbortError') notice(message, err.message, 'error');
    }
  };

  const redirect = async (path, json) => {
    try {
      const { url } = await post(path, json);
      location.assign(url);
    } catch (err) {
      notice(message, err.message, 'error');
    }
  };

  const renderPlan = (sub, billing) => {
    const limit = sub.instance_limit;
    const usage = limit === null ? `${sub.instance_count} (unlimited)` : `${sub.instance_count} of ${limit}`;
    replace(plan,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Tier'), h('dd', { id: 'tier' }, sub.tier),
        h('dt', {}, 'Instances'), h('dd', {}, usage,
          limit === null ? null : h('meter', { min: 0, max: limit, value: sub.instance_count, 'aria-label': 'Instances used' }))),
      billing
        ? h('div', { class: 'row' },
          ['crab', 'lobster'].filter((t) => t !== sub.tier).map((tier) => h('button', { type: 'button',
            onclick: () => redirect('/v1/subscription/checkout', { tier }) }, `Upgrade to ${tier}`)),
          sub.stripe_customer_id ? h('button', { type: 'button', class: 'secondary',
            onclick: () => redirect('/v1/subscription/portal') }, 'Manage billing') : null)
        : h('p', { class: 'hint' }, 'Billing is not configured on this server.'));
  };

  const provider = h('select', { name: 'provider' }, ['anthropic', 'openai', 'gemini'].map((p) => h('option', { value: p }, p)));
  const secret = h('input', { type: 'password', name: 'secret', autocomplete: 'off', spellcheck: 'false' });
  const out = h('div', { 'aria-live': 'polite' });
  const saveKey = async (event) => {
    event.preventDefault();
    try {
      await api('PATCH', '/v1/organization', { json: { model_api_keys: { [provider.value]: secret.value } } });
      secret.value = '';
      replace(out, h('p', { class: 'success' }, `Saved the ${provider.value} key.`));
      load();
    } catch (err) {
      replace(out, errorBox(err.message));
    }
  };

  load();
  return h('section', {},
    h('h1', {}, 'Organization'),
    message, org,
    h('h2', {}, 'Subscription'), plan,
    h('h2', {}, 'Model provider keys'),
    h('form', { class: 'inline', onsubmit: saveKey, 'aria-label': 'Set a model provider key' },
      field('Provider', provider), field('API key', secret, 'Stored encrypted, never shown again; empty removes it.'),
      h('button', { type: 'submit' }, 'Save key')),
    out);
}
