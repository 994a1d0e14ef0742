// The instance's files: browse folders, view a text file, upload into the current folder, download, delete.

import { api, ApiError, download, get, instancePath } from './api.js';
import { announce, confirmDialog, errorBox, field, formatBytes, formatTime, h, notice, replace } from './dom.js';

const join = (dir, name) => (dir === '.' || dir === '' ? name : `${dir.replace(/\/$/, '')}/${name}`);
const parent = (path) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '.');

export function filesTab(ctx, instance) {
  let cwd = 'workspace';
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Folder' });
  const body = h('tbody');
  const message = h('div', { 'aria-live': 'polite' });
  const viewer = h('div', { class: 'viewer' });
  const fileInput = h('input', { type: 'file', name: 'file', required: true });
  const upload = h('button', { type: 'submit' }, 'Upload');

  const path = (tail, p) => `${instancePath(instance.id, tail)}?path=${encodeURIComponent(p)}`;

  const open = async (dir) => {
    try {
      const listing = await get(path('/files', dir), { signal: ctx.signal });
      cwd = listing.path === '' ? '.' : listing.path;
      renderCrumbs();
      const entries = [...listing.entries].sort((a, b) => (b.is_dir - a.is_dir) || a.name.localeCompare(b.name));
      replace(body, entries.length ? entries.map(row) : h('tr', {}, h('td', { colspan: 4 }, 'This folder is empty.')));
      if (message.querySelector('.error')) notice(message, '');
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 404 && dir !== '.') { open('.'); return; }
      notice(message, err.message, 'error');
    }
  };

  const renderCrumbs = () => {
    const parts = cwd === '.' ? [] : cwd.split('/');
    const links = [h('button', { type: 'button', class: 'link', onclick: () => open('.') }, 'root')];
    parts.forEach((part, i) => {
      const target = parts.slice(0, i + 1).join('/');
      links.push(' / ', i === parts.length - 1
        ? h('span', { 'aria-current': 'location' }, part)
        : h('button', { type: 'button', class: 'link', onclick: () => open(target) }, part));
    });
    replace(crumbs, links);
  };

  const view = async (entry) => {
    replace(viewer, h('p', { class: 'info' }, `Opening ${entry.path}…`));
    try {
      const file = await get(path('/files/content', entry.path), { signal: ctx.signal });
      replace(viewer, h('h3', {}, entry.path), h('pre', { class: 'file-content', tabindex: 0 }, file.content));
    } catch (err) {
      const hint = err instanceof ApiError && (err.status === 415 || err.status === 413)
        ? `${entry.name} cannot be shown as text: download it instead.` : err.message;
      replace(viewer, errorBox(hint));
    }
  };

  const remove = async (entry) => {
    if (!await confirmDialog(`Delete ${entry.path}${entry.is_dir ? ' and everything in it' : ''}?`, 'Delete')) return;
    try {
      await api('DELETE', path('/files', entry.path));
      announce(`${entry.name} deleted.`);
      open(cwd);
    } catch (err) {
      notice(message, err.message, 'error');
    }
  };

  const row = (entry) => h('tr', { 'data-path': entry.path },
    h('th', { scope: 'row' }, entry.is_dir
      ? h('button', { type: 'button', class: 'link', onclick: () => open(entry.path) }, `${entry.name}/`)
      : h('button', { type: 'button', class: 'link', onclick: () => view(entry), 'aria-label': `View ${entry.name}` }, entry.name)),
    h('td', {}, entry.is_dir ? '' : formatBytes(entry.size)),
    h('td', { class: 'wide' }, formatTime(entry.mod_time)),
    h('td', {}, h('div', { class: 'actions' },
      entry.is_dir ? null : h('button', { type: 'button', class: 'secondary', 'aria-label': `Download ${entry.name}`,
        onclick: () => download(path('/files/download', entry.path), entry.name).catch((err) => notice(message, err.message, 'error')) }, 'Download'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${entry.name}`, onclick: () => remove(entry) }, 'Delete'))));

  const submit = async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const form = new FormData();
    const target = join(cwd, file.name);
    form.append('path', target);
    form.append('file', file);
    upload.disabled = true;
    notice(message, `Uploading ${file.name}…`);
    try {
      await api('POST', instancePath(instance.id, '/files/upload'), { form });
      notice(message, `Uploaded ${target}.`, 'success');
      fileInput.value = '';
      open(cwd);
    } catch (err) {
      notice(message, err.message, 'error');
    } finally {
      upload.disabled = false;
    }
  };

  open(cwd);
  return h('div', { class: 'files' },
    crumbs,
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'secondary', onclick: () => open(parent(cwd)) }, 'Up one folder'),
      h('button', { type: 'button', class: 'secondary', onclick: () => open(cwd) }, 'Refresh')),
    h('form', { class: 'inline', onsubmit: submit, 'aria-label': 'Upload a file' },
      field('Upload into this folder', fileInput), upload),
    message,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Files in this folder'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Size'),
        h('th', { scope: 'col', class: 'wide' }, 'Modified'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      body)),
    viewer);
}
