"""Putting an OpenClaw backup archive (`openclaw backup create`) in place as an instance's state, with its gateway
stopped. The archive is untrusted (a tenant's state, possibly another instance's), so it is checked on the host
before anything of it enters the sandbox (one tar stream read, nothing extracted), then extracted by OpenClaw's own
`backup restore --target <fresh dir>` inside the sandbox (same uid, namespaces and limits as the gateway) and swapped
into the state dir there. Every attempt starts from the archive again, so one interrupted anywhere is redone whole.

Inside the box, beside the state dir (`root`) and on its filesystem: `home/.chowder-restore/` holds the archive,
OpenClaw's staging target and the state dir's former entries until the swap is done (the box needs room for about
three times the state while it runs)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import posixpath
import tarfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from chowder.core.errors import BadRequest, NotFound, ProviderError
from chowder.core.settings import MIB
from chowder.runtime.openclaw import cli, state_files
from chowder.runtime.openclaw import config as oc_config
from chowder.runtime.openclaw.channels import CHANNELS
from chowder.sandbox.base import ExecResult, SandboxInfo, SandboxProvider

# One OpenClaw CLI call in the sandbox (`OpenClawRuntime._cli`, bound to a provider and instance).
Cli = Callable[[tuple[str, ...], float], Awaitable[tuple[ExecResult, SandboxInfo]]]
_STEP_TIMEOUT_S = 600.0

# Where the archive's parts are written (relative to the state dir: the only place the file operations reach).
PARTS_DIR = ".chowder-restore"
PART_BYTES = 8 * MIB
_MANIFEST_BYTES = MIB
_MAX_ENTRIES = 200_000
# What must not come back from an archive: the gateway's log stays the instance's; the config fallbacks (ours, and
# OpenClaw's own backup ring, which also holds former channel settings) were written for the sandbox the backup came
# from; OpenClaw's per-install key for its config journal is made anew when missing.
_KEPT = ("logs",)
_DROPPED = (
    "openclaw.json.last-good",
    "openclaw.json.rejected",
    "openclaw.json.candidate",
    "openclaw.json.bak",
    *(f"openclaw.json.bak.{n}" for n in range(1, 5)),
    "config-journal-fingerprint.key",
)
# What a clone (or a restore of another instance's backup) leaves out: two gateways on one bot account would fight
# over its updates, and an inbound hook token must not open two agents.
_CHANNEL_STATE = "credentials"


@dataclass(frozen=True, slots=True)
class ArchiveLayout:
    """Where an archive holds the state dir: `state` is its path inside the archive (OpenClaw's `assets[].archivePath`
    of the one `state` asset); `source` the state dir it was taken from."""

    root: str
    state: str
    source: str
    unpacked_bytes: int


async def restore_state(
    provider: SandboxProvider, sandbox_id: str, archive: Path, *, foreign: bool, max_unpacked: int, node: Path, run: Cli
) -> None:
    """Replaces the stopped agent's state dir with the archive's (checked first: BadRequest, nothing touched), then
    removes what must not come back (`restored_config`, `dropped_paths`). ProviderError when a step in the sandbox
    fails (before the swap, the state dir is as it was)."""
    layout = await asyncio.to_thread(check_archive, archive, max_unpacked)
    info = await provider.info(sandbox_id)
    await write_parts(provider, sandbox_id, archive)
    await _node(provider, info, node, swap_args("stage", info.root, info.home))
    work = work_dir(info.home)
    restored, _ = await run(
        ("backup", "restore", f"{work}/archive.tar.gz", "--target", f"{work}/staged", "--json"), _STEP_TIMEOUT_S
    )
    if restored.exit_code != 0:
        raise refused("openclaw backup restore", restored.exit_code, cli.reason(restored))
    await _node(provider, info, node, swap_args("swap", info.root, info.home, layout.state))
    config = await state_files.read_config(provider, sandbox_id)
    if config is not None:
        await state_files.write_json(provider, sandbox_id, state_files.CONFIG_FILE, restored_config(config, foreign))
    for path in dropped_paths(foreign):
        with contextlib.suppress(NotFound):
            await provider.delete_path(sandbox_id, path)


async def _node(provider: SandboxProvider, info: SandboxInfo, node: Path, args: str) -> None:
    """The swap script's step, run by the sandbox's own Node (no secret in its environment)."""
    env = {"HOME": info.home, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    result = await provider.exec(info.sandbox_id, [info.inside(node), "-e", SWAP_SCRIPT, args], env, _STEP_TIMEOUT_S)
    if result.exit_code != 0:
        raise refused(json.loads(args)["step"], result.exit_code, cli.plain(result.stderr or result.stdout))


def check_archive(path: Path, max_unpacked_bytes: int) -> ArchiveLayout:
    """The archive's layout, read from its manifest; BadRequest naming the first thing refused: an entry outside its
    root (absolute, `..`), a device or FIFO, a link leaving the state dir (absolute, or climbing out), state outside
    the state dir, more than `max_unpacked_bytes` unpacked or too many entries."""
    manifest: dict[str, Any] | None = None
    links: list[tuple[str, str]] = []
    names: list[str] = []
    total = 0
    try:
        with tarfile.open(path, "r|gz") as archive:
            for member in archive:
                name = _entry_name(member.name)
                names.append(name)
                total += max(member.size, 0)
                if total > max_unpacked_bytes or len(names) > _MAX_ENTRIES:
                    raise BadRequest(f"The backup unpacks to more than {max_unpacked_bytes // MIB} MiB or entries.")
                if member.issym() or member.islnk():
                    target = member.linkname
                    base = posixpath.dirname(name) if member.issym() else ""
                    links.append((name, posixpath.normpath(posixpath.join(base, target)) if target else "/"))
                    if target.startswith("/"):
                        raise BadRequest(f"The backup holds a link to an absolute path: {name}.")
                elif not (member.isreg() or member.isdir()):
                    raise BadRequest(f"The backup holds a special file: {name}.")
                elif member.isreg() and PurePosixPath(name).parts[1:] == ("manifest.json",):
                    manifest = _manifest(archive.extractfile(member), member.size)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadRequest(f"The backup is not a readable archive: {exc}.") from exc
    layout = _layout(manifest, names, total)
    for name, target in links:
        if not _within(target, layout.state):
            raise BadRequest(f"The backup holds a link leaving the state directory: {name}.")
    return layout


def _entry_name(name: str) -> str:
    clean = name.rstrip("/")
    parts = PurePosixPath(clean).parts
    if not parts or clean.startswith("/") or ".." in parts or "" in clean.split("/"):
        raise BadRequest(f"The backup holds a path outside its root: {name}.")
    return clean


def _manifest(stream: Any, size: int) -> dict[str, Any]:
    if stream is None or size > _MANIFEST_BYTES:
        raise BadRequest("The backup's manifest is unreadable or too large.")
    try:
        parsed = json.loads(stream.read())
    except ValueError as exc:
        raise BadRequest(f"The backup's manifest is not JSON: {exc}.") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("The backup's manifest is not an object.")
    return parsed


def _layout(manifest: dict[str, Any] | None, names: list[str], total: int) -> ArchiveLayout:
    """One root, one `state` asset under `<root>/payload/`, nothing else but the manifest outside it."""
    roots = {PurePosixPath(name).parts[0] for name in names}
    if manifest is None or len(roots) != 1 or manifest.get("schemaVersion") != 1:
        raise BadRequest("The backup is not an OpenClaw backup archive (one root with a manifest.json).")
    root = roots.pop()
    assets = manifest.get("assets")
    if not isinstance(assets, list) or [a.get("kind") for a in assets if isinstance(a, dict)] != ["state"]:
        raise BadRequest("The backup must hold exactly the state directory (its workspace inside it).")
    state, source = str(assets[0].get("archivePath") or ""), str(assets[0].get("sourcePath") or "")
    if not state.startswith(f"{root}/payload/") or posixpath.normpath(state) != state:
        raise BadRequest("The backup's manifest places the state directory outside the archive's payload.")
    for name in names:
        if not (_within(name, state) or _within(state, name) or name == f"{root}/manifest.json"):
            raise BadRequest(f"The backup holds an entry outside the state directory: {name}.")
    return ArchiveLayout(root=root, state=state, source=source, unpacked_bytes=total)


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(f"{directory}/")


async def write_parts(provider: SandboxProvider, sandbox_id: str, archive: Path) -> int:
    """The archive into the state dir in parts (never held in memory whole); how many."""
    with contextlib.suppress(NotFound):
        await provider.delete_path(sandbox_id, PARTS_DIR)
    await provider.mkdir(sandbox_id, PARTS_DIR)
    count = 0
    with archive.open("rb") as source:
        while chunk := source.read(PART_BYTES):
            await provider.write_file(sandbox_id, f"{PARTS_DIR}/part-{count:05d}", chunk)
            count += 1
    return count


# Run by the sandbox's Node as the sandbox's uid. `stage`: the parts out of the state dir into a fresh work dir,
# joined into one archive. `swap`: the state dir's entries moved aside, the restored ones moved in (renames on one
# filesystem), the work dir removed. Paths come as one JSON argument.
SWAP_SCRIPT = r"""
const fs = require('fs'), path = require('path');
const a = JSON.parse(process.argv[1]);
const kept = new Set(a.kept);
if (a.step === 'stage') {
  fs.rmSync(a.work, {recursive: true, force: true});
  fs.mkdirSync(a.work, {recursive: true, mode: 0o700});
  const parts = path.join(a.work, 'parts');
  fs.renameSync(path.join(a.root, a.parts), parts);
  const out = fs.openSync(path.join(a.work, 'archive.tar.gz'), 'wx', 0o600);
  for (const name of fs.readdirSync(parts).sort()) fs.writeSync(out, fs.readFileSync(path.join(parts, name)));
  fs.closeSync(out);
  fs.rmSync(parts, {recursive: true, force: true});
} else {
  const staged = path.join(a.work, 'staged', a.state);
  if (!fs.lstatSync(staged).isDirectory()) throw new Error('no state directory in the restored archive');
  const old = path.join(a.work, 'old');
  fs.mkdirSync(old, {recursive: true});
  const move = (from, to) => {
    for (const name of fs.readdirSync(from)) {
      if (!kept.has(name)) fs.renameSync(path.join(from, name), path.join(to, name));
    }
  };
  move(a.root, old);
  move(staged, a.root);
  fs.rmSync(a.work, {recursive: true, force: true});
}
"""


def swap_args(step: str, root: str, home: str, state: str = "") -> str:
    return json.dumps(
        {"step": step, "root": root, "work": work_dir(home), "parts": PARTS_DIR, "state": state, "kept": list(_KEPT)}
    )


def work_dir(home: str) -> str:
    return f"{home}/.chowder-restore"


def restored_config(current: dict[str, Any], foreign: bool) -> dict[str, Any]:
    """The restored `openclaw.json` with every key the control plane owns removed (the gateway's auth, port, paths
    and model routing of the sandbox it came from: `prepare` renders this sandbox's), and, for a `foreign` backup
    (a clone, or another instance's), its channels, their plugins' trust and its inbound hooks removed too."""
    config = copy.deepcopy(current)
    for managed in oc_config.MANAGED_PATHS:
        _remove(config, managed)
    if foreign:
        config.pop("channels", None)
        config.pop("hooks", None)
        for channel in CHANNELS.values():
            _remove(config, ("plugins", "entries", channel.id))
    return config


def _remove(tree: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = tree
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def dropped_paths(foreign: bool) -> tuple[str, ...]:
    """What is deleted from the restored state dir besides the config's keys."""
    return (*_DROPPED, *((_CHANNEL_STATE,) if foreign else ()))


def refused(step: str, exit_code: int, output: str) -> ProviderError:
    return ProviderError(f"Restoring the backup failed at {step} (exit {exit_code}): {output[-1000:]}")
