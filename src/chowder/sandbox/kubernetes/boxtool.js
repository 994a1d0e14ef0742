// The kubernetes provider's hands inside a sandbox pod, run through the pod's exec subresource as
// `node -e <this> <op> <args...>` (the image's Node; the pod's own user, so it reaches only what the tenant can).
// The box is /sandbox: tenant paths are below /sandbox/root and follow the same rules as the other providers'
// (`boxfs`): absolute paths and `..` refused, symlinks followed only while they stay inside the root, the root
// itself never written, moved or deleted, reads refused for anything but a regular file.
//
// Answers: exit 0 with the result on stdout (JSON, or raw bytes for `read` and `stream`); exit 3 with a JSON
// `{"error": ...}` or `{"errno": ...}` on stderr for a refusal the API reports; anything else is a failure.
// Bulk input (`write` data, `run`'s argv and environment) comes on stdin, its length given as an argument.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawn } = require('child_process');

const ROOT = '/sandbox/root';
const MAX_HOPS = 40;

class Refusal extends Error {
  constructor(body) {
    super(JSON.stringify(body));
    this.body = body;
  }
}

const refuse = (error) => { throw new Refusal({ error }); };

function clean(given) {
  if (given.startsWith('/') || given.includes('\0')) refuse('escape');
  const parts = given.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) refuse('escape');
  return parts;
}

// Components below the root with symlinks resolved as the app sees them; refused once a path leaves the root.
function walk(given, followLast) {
  let done = [];
  let todo = clean(given);
  const last = todo.length === 0 || followLast;
  let hops = 0;
  while (todo.length) {
    const name = todo.shift();
    if (name === '' || name === '.') continue;
    if (name === '..') {
      if (!done.length) refuse('escape');
      done.pop();
      continue;
    }
    const candidate = path.join(ROOT, ...done, name);
    let target = null;
    if (todo.length || last) {
      try {
        if (fs.lstatSync(candidate).isSymbolicLink()) target = fs.readlinkSync(candidate);
      } catch (e) {
        if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw e;
      }
    }
    if (target === null) {
      done.push(name);
      continue;
    }
    if (++hops > MAX_HOPS) refuse('loop');
    if (path.isAbsolute(target)) {
      if (target !== ROOT && !target.startsWith(ROOT + '/')) refuse('escape');
      done = [];
      target = path.relative(ROOT, target);
    }
    todo = [...target.split('/'), ...todo];
  }
  return done;
}

function notRoot(parts) {
  if (!parts.length) refuse('root');
  return parts;
}

const full = (parts) => path.join(ROOT, ...parts);

function openRegular(given) {
  const fd = fs.openSync(full(walk(given, true)), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  const info = fs.fstatSync(fd);
  if (info.isDirectory()) refuse('is_dir');
  if (!info.isFile()) refuse('not_regular');
  return [fd, info.size];
}

function readInput(length) {
  const data = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    let n;
    try {
      n = fs.readSync(0, data, got, length - got, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
    if (n === 0) throw new Error(`stdin ended after ${got} of ${length} bytes`);
    got += n;
  }
  return data;
}

function writeAll(fd, data) {
  for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off);
}

// Copies `size` bytes of `fd` from `position` to stdout.
function copyOut(fd, position, size) {
  const chunk = Buffer.alloc(1 << 16);
  while (size > 0) {
    const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size), position);
    if (n === 0) break;
    writeAll(1, chunk.subarray(0, n));
    position += n;
    size -= n;
  }
}

const ops = {
  list(given) {
    const shown = clean(given).join('/');
    const dir = full(walk(given, true));
    const entries = fs.readdirSync(dir).sort().map((name) => {
      const info = fs.lstatSync(path.join(dir, name));
      return {
        name,
        path: shown ? `${shown}/${name}` : name,
        is_dir: info.isDirectory(),
        size: info.size,
        mod_time: info.mtimeMs / 1000,
        mode: info.mode,
      };
    });
    process.stdout.write(JSON.stringify(entries));
  },

  // At most `max` bytes (its last ones with `tail`); one byte more tells the caller the file was larger.
  read(given, max, tail) {
    const [fd, size] = openRegular(given);
    const limit = Number(max);
    const from = tail === '1' ? Math.max(0, size - limit) : 0;
    copyOut(fd, from, Math.min(size - from, limit + 1));
  },

  // Its size on the first line, then exactly that many bytes.
  stream(given) {
    const [fd, size] = openRegular(given);
    writeAll(1, Buffer.from(`${size}\n`));
    copyOut(fd, 0, size);
  },

  // Atomic: a temp file beside it, renamed over it (a symlink there is replaced, not written through).
  write(given, length) {
    const parts = notRoot(walk(given, false));
    const dir = full(parts.slice(0, -1));
    fs.mkdirSync(dir, { recursive: true });
    const target = path.join(dir, parts[parts.length - 1]);
    let mode = 0o644;
    try {
      const existing = fs.lstatSync(target);
      if (existing.isFile()) mode = existing.mode & 0o7777;
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    const data = readInput(Number(length));
    const temporary = path.join(dir, `.chowder-${crypto.randomBytes(6).toString('hex')}.tmp`);
    const fd = fs.openSync(temporary, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, mode);
      writeAll(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(temporary, target);
    } catch (e) {
      try { fs.unlinkSync(temporary); } catch (_) { /* already gone */ }
      throw e;
    }
  },

  move(source, destination) {
    const from = notRoot(walk(source, false));
    const to = notRoot(walk(destination, false));
    fs.mkdirSync(full(to.slice(0, -1)), { recursive: true });
    fs.renameSync(full(from), full(to));
  },

  delete(given) {
    const target = full(notRoot(walk(given, false)));
    if (fs.lstatSync(target).isDirectory()) fs.rmSync(target, { recursive: true });
    else fs.unlinkSync(target);
  },

  mkdir(given) {
    fs.mkdirSync(full(walk(given, true)), { recursive: true });
  },

  // argv and environment (JSON on stdin, so no secret rides in the exec request), in the root, its own process
  // group killed whole at the timeout (exit `killedCode`).
  run(timeoutMs, killedCode, length) {
    const { argv, env } = JSON.parse(readInput(Number(length)).toString());
    const child = spawn(argv[0], argv.slice(1), { env, cwd: ROOT, detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => {
      try { process.kill(-child.pid, 'SIGKILL'); } catch (_) { /* gone meanwhile */ }
      process.exit(Number(killedCode));
    }, Number(timeoutMs));
    child.on('error', (e) => { process.stderr.write(`${argv[0]}: ${e.message}\n`); process.exit(127); });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      process.exit(code === null ? 128 + (require('os').constants.signals[signal] || 0) : code);
    });
  },
};

const [op, ...args] = process.argv.slice(1);
try {
  if (!Object.prototype.hasOwnProperty.call(ops, op)) throw new Error(`unknown operation ${op}`);
  ops[op](...args);
} catch (e) {
  if (e instanceof Refusal) {
    process.stderr.write(e.message);
  } else if (e.code && typeof e.code === 'string' && e.code.startsWith('E')) {
    process.stderr.write(JSON.stringify({ errno: e.code, message: e.message }));
  } else {
    process.stderr.write(String(e && e.stack || e));
    process.exit(1);
  }
  process.exit(3);
}
