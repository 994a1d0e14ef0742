// The public API, as the page calls it: the key from sessionStorage (gone when the tab closes), errors as
// ApiError carrying the status and the API's `detail`, and streamed answers read as server-sent events.

const KEY = 'chowder.key';
const GRANTED = 'chowder.instances';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get isOrg() { return (this.key ?? '').startsWith('chd_org_'); },
  // A scoped key cannot list instances: the ids it was issued for are given at sign-in.
  get instanceIds() {
    try { return JSON.parse(sessionStorage.getItem(GRANTED) ?? '[]'); } catch { return []; }
  },
  signIn(key, instanceIds = []) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(GRANTED, JSON.stringify(instanceIds));
  },
  signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(GRANTED);
  },
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

function describe(status, detail) {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc ?? []).filter((p) => p !== 'body').join('.')}: ${d.msg}`).join('; ');
  }
  if (detail && typeof detail === 'object' && detail.error) return String(detail.error);
  return `Request failed (HTTP ${status}).`;
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

function headers(extra = {}, key = session.key) {
  return key ? { Authorization: `Bearer ${key}`, ...extra } : extra;
}

async function failure(res) {
  let detail = res.statusText;
  try { detail = (await res.json()).detail ?? detail; } catch { /* not JSON */ }
  if (res.status === 401 && session.key) onUnauthorized();
  return new ApiError(res.status, detail);
}

// `json` is sent as JSON, `form` as multipart; `raw` returns the Response (downloads). `key` overrides the
// session's (sign-in checks a key before keeping it).
export async function api(method, path, { json, form, signal, raw = false, key } = {}) {
  const init = { method, signal, headers: headers({}, key ?? session.key) };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const get = (path, options) => api('GET', path, options);
export const post = (path, json, options) => api('POST', path, { json, ...options });

// A turn with `stream: true`: yields each event object as it arrives, until `data: [DONE]`.
export async function* streamEvents(path, body, signal) {
  const res = await fetch(path, {
    method: 'POST',
    signal,
    headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, '');
      buffer = buffer.slice(end + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') return;
      try { yield JSON.parse(data); } catch { /* a line that is not an event: skipped */ }
    }
  }
}

// Downloads go through fetch (the key travels in a header, never in a URL), then are saved from a blob URL.
export async function download(path, filename) {
  const res = await api('GET', path, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export const instancePath = (id, tail = '') => `/v1/instances/${encodeURIComponent(id)}${tail}`;
