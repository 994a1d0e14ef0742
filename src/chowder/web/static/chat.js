// Chat with an instance's agent: sessions (main, the ones usage knows, new ones), answers streamed as they arrive
// (Responses API, `stream: true`: `response.output_text.delta` events until `data: [DONE]`).

import { ApiError, get, instancePath, streamEvents } from './api.js';
import { announce, errorBox, field, h, replace } from './dom.js';
import { DEFAULT_MODELS } from './instances.js';

const SESSION_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
// The same for the input's pattern attribute, which browsers compile with the `v` flag (a `-` escaped there).
const SESSION_PATTERN = '[A-Za-z0-9._:@\\-]{1,128}';
// Each session's transcript while the tab lives: { role, text, note }.
const transcripts = new Map();

function storedSessions(id) {
  try { return JSON.parse(sessionStorage.getItem(`chowder.sessions.${id}`) ?? '[]'); } catch { return []; }
}

function remember(id, sessionId) {
  const known = storedSessions(id);
  if (!known.includes(sessionId)) sessionStorage.setItem(`chowder.sessions.${id}`, JSON.stringify([...known, sessionId]));
}

export function chatTab(ctx, instance) {
  let sessionId = 'main';
  const sessions = new Set(['main', ...storedSessions(instance.id)]);
  const sessionSelect = h('select', { name: 'session' });
  const log = h('ol', { class: 'transcript', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' });
  const model = h('input', { type: 'text', name: 'model', value: DEFAULT_MODELS[instance.model_provider] ?? DEFAULT_MODELS.anthropic, spellcheck: 'false' });
  const input = h('textarea', { name: 'message', rows: 3, required: true, placeholder: 'Message the agent…' });
  const send = h('button', { type: 'submit' }, 'Send');
  const state = h('p', { class: 'chat-state', 'aria-live': 'polite' });
  let running = null;

  const transcript = () => {
    const key = `${instance.id}/${sessionId}`;
    if (!transcripts.has(key)) transcripts.set(key, []);
    return transcripts.get(key);
  };
  const bubble = (entry) => h('li', { class: `msg ${entry.role}` },
    h('span', { class: 'who' }, entry.role === 'user' ? 'You' : 'Agent'),
    h('div', { class: 'text' }, entry.text),
    entry.note ? h('small', { class: entry.failed ? 'error' : 'hint' }, entry.note) : null);
  const renderLog = () => replace(log, transcript().map(bubble));
  const renderSessions = () => replace(sessionSelect,
    [...sessions].map((s) => h('option', { value: s, selected: s === sessionId ? true : null }, s)));
  sessionSelect.addEventListener('change', () => { sessionId = sessionSelect.value; renderLog(); });

  const newSession = h('input', { type: 'text', name: 'new-session', pattern: SESSION_PATTERN, maxlength: 128, spellcheck: 'false' });
  const addSession = (event) => {
    event.preventDefault();
    const name = newSession.value.trim();
    if (!SESSION_ID.test(name) || /^(subagent|cron|acp):/.test(name)) {
      replace(state, errorBox('A session name is 1–128 letters, digits or . _ : @ - (not starting with subagent:, cron: or acp:).'));
      return;
    }
    sessions.add(name);
    remember(instance.id, name);
    sessionId = name;
    newSession.value = '';
    renderSessions();
    renderLog();
    announce(`Session ${name} selected.`);
  };

  const submit = async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    const turn = transcript();
    turn.push({ role: 'user', text });
    const answer = { role: 'assistant', text: '', note: 'streaming…' };
    turn.push(answer);
    input.value = '';
    renderLog();
    const answerText = log.lastElementChild.querySelector('.text');
    const path = sessionId === 'main'
      ? instancePath(instance.id, '/responses')
      : instancePath(instance.id, `/session/${encodeURIComponent(sessionId)}/responses`);
    running = new AbortController();
    ctx.signal.addEventListener('abort', () => running?.abort());
    send.disabled = true;
    state.textContent = 'The agent is answering…';
    try {
      for await (const event of streamEvents(path, { model: model.value.trim(), input: text }, running.signal)) {
        if (event.type === 'response.output_text.delta') {
          answer.text += event.delta ?? '';
          answerText.textContent = answer.text;
          log.scrollTop = log.scrollHeight;
        } else if (event.type === 'response.completed') {
          const usage = event.response?.usage;
          answer.note = usage ? `${usage.input_tokens} tokens in, ${usage.output_tokens} out` : 'done';
        } else if (event.type === 'response.failed' || event.type === 'error') {
          answer.failed = true;
          answer.note = event.response?.error?.message ?? event.message ?? 'The turn failed.';
        }
      }
      if (answer.note === 'streaming…') answer.note = 'done';
      state.textContent = answer.failed ? 'The turn failed.' : 'Answer complete.';
    } catch (err) {
      answer.failed = true;
      answer.note = err.name === 'AbortError' ? 'stopped' : err.message;
      state.textContent = '';
      if (err instanceof ApiError && err.status === 403) answer.note = `${err.message} (this key may not chat)`;
    } finally {
      running = null;
      send.disabled = false;
      renderLog();
    }
  };
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });

  // Sessions the instance has used, from its usage report (needs `read`; a key without it just sees its own).
  get(instancePath(instance.id, '/usage'), { signal: ctx.signal }).then((usage) => {
    for (const s of usage.sessions ?? []) if (s.session_id && !s.session_id.startsWith('chowder-warm')) sessions.add(s.session_id);
    renderSessions();
  }).catch(() => {});

  renderSessions();
  renderLog();
  return h('div', { class: 'chat' },
    h('div', { class: 'chat-bar' },
      field('Session', sessionSelect),
      h('form', { class: 'inline', onsubmit: addSession, 'aria-label': 'New session' },
        field('New session', newSession), h('button', { type: 'submit', class: 'secondary' }, 'Open'))),
    log,
    h('form', { class: 'composer', onsubmit: submit, 'aria-label': 'Send a message' },
      field('Message', input, 'Enter sends, Shift+Enter starts a new line.'),
      h('div', { class: 'row' }, field('Model', model), send)),
    state);
}
