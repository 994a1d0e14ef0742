// Token usage of an instance: totals, and bars per session and per model (inline SVG; the same numbers in a table
// for screen readers and for copying).

import { get, instancePath } from './api.js';
import { h, notice, replace, svg } from './dom.js';

const number = (n) => n.toLocaleString();

export function usageTab(ctx, instance) {
  const out = h('div');
  const message = h('div');
  const load = async () => {
    try {
      const usage = await get(instancePath(instance.id, '/usage'), { signal: ctx.signal });
      const t = usage.total;
      replace(out,
        h('dl', { class: 'facts totals' },
          h('dt', {}, 'Requests'), h('dd', {}, number(t.requests)),
          h('dt', {}, 'Input tokens'), h('dd', {}, number(t.input_tokens)),
          h('dt', {}, 'Output tokens'), h('dd', {}, number(t.output_tokens)),
          h('dt', {}, 'Total tokens'), h('dd', {}, number(t.total_tokens))),
        chart('Tokens per session', usage.sessions.map((s) => [s.session_id ?? '(the agent\'s own calls)', s])),
        chart('Tokens per model', usage.models.map((m) => [m.model, m])));
    } catch (err) {
      if (err.name !== 'AbortError') notice(message, err.message, 'error');
    }
  };
  load();
  return h('div', { class: 'usage' },
    h('button', { type: 'button', class: 'secondary', onclick: load }, 'Refresh'), message, out);
}

function chart(title, rows) {
  if (rows.length === 0) return h('section', {}, h('h3', {}, title), h('p', {}, 'No usage yet.'));
  const max = Math.max(1, ...rows.map(([, r]) => r.total_tokens));
  const barHeight = 22;
  const labelWidth = 240;
  const width = 600;
  const bars = rows.map(([label, r], i) => {
    const y = i * (barHeight + 8);
    const w = Math.max(2, ((width - labelWidth - 80) * r.total_tokens) / max);
    return svg('g', {},
      svg('text', { x: labelWidth - 8, y: y + 16, 'text-anchor': 'end', class: 'bar-label' }, label.length > 30 ? `${label.slice(0, 29)}…` : label),
      svg('rect', { x: labelWidth, y, width: w, height: barHeight, rx: 3, class: 'bar' }),
      svg('text', { x: labelWidth + w + 6, y: y + 16, class: 'bar-value' }, number(r.total_tokens)));
  });
  const height = rows.length * (barHeight + 8);
  const id = `chart-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return h('section', { class: 'chart' },
    h('h3', { id }, title),
    svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': id, preserveAspectRatio: 'xMinYMin meet' },
      svg('title', {}, title), bars),
    h('div', { class: 'table-wrap' }, h('table', { class: 'compact' },
      h('caption', { class: 'visually-hidden' }, title),
      h('thead', {}, h('tr', {}, ['Name', 'Requests', 'Input', 'Output', 'Total'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map(([label, r]) => h('tr', {},
        h('th', { scope: 'row' }, label), h('td', {}, number(r.requests)), h('td', {}, number(r.input_tokens)),
        h('td', {}, number(r.output_tokens)), h('td', {}, number(r.total_tokens))))))));
}
