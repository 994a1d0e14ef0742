"""An in-memory sandbox provider: a sandbox is an entry in a dict and its gateway a flag, so the engine can be
driven through every lifecycle path in milliseconds. Scriptable: an operation fails or hangs, a running sandbox
dies, and a sandbox can be found running as if it had outlived a crashed control plane."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from chowder.core.errors import ProviderError
from chowder.sandbox.base import (
    Egress,
    ExecResult,
    FileEntry,
    FileStream,
    LaunchSpec,
    Resources,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStatus,
)

Operation = Literal["create", "start", "stop", "destroy", "page_out"]


@dataclass
class FakeSandbox:
    spec: SandboxSpec
    running: bool = False
    launches: list[LaunchSpec] = field(default_factory=list)
    egress: Egress | None = None  # as set after create (the spec's until then)


class FakeSandboxProvider:
    """Lifecycle operations and egress only: a file or exec call fails the test that makes it (the engine makes
    none)."""

    name = "fake"
    local = False
    freezes = True

    def __init__(self) -> None:
        self.sandboxes_by_id: dict[str, FakeSandbox] = {}
        self.calls: list[tuple[Operation, str]] = []
        self.frozen: set[str] = set()
        self.paged: set[str] = set()
        self.swap = False  # whether `page_out` has a host swap to page into
        self._failures: dict[Operation, str] = {}
        self._hangs: set[Operation] = set()

    # Scripting.

    def fail(self, operation: Operation, reason: str) -> None:
        """Every later `operation` raises ProviderError(reason), until `heal`."""
        self._failures[operation] = reason

    def hang(self, operation: Operation) -> None:
        """Every later `operation` waits until cancelled, until `heal`."""
        self._hangs.add(operation)

    def heal(self) -> None:
        self._failures.clear()
        self._hangs.clear()

    def die(self, sandbox_id: str) -> None:
        """The sandbox's process tree ends on its own (a crash, the OOM killer)."""
        self.sandboxes_by_id[sandbox_id].running = False
        self.frozen.discard(sandbox_id)

    def left_running(self, sandbox_id: str) -> None:
        """A sandbox with its gateway up, launched by a control plane that died since."""
        spec = SandboxSpec(sandbox_id, labels={}, resources=Resources(memory_mb=256, cpus=1.0, pids=64))
        self.sandboxes_by_id[sandbox_id] = FakeSandbox(spec, running=True)

    def is_running(self, sandbox_id: str) -> bool:
        found = self.sandboxes_by_id.get(sandbox_id)
        return found is not None and found.running

    def count(self, operation: Operation, sandbox_id: str) -> int:
        return self.calls.count((operation, sandbox_id))

    # The provider contract.

    def isolation_report(self) -> dict[str, str]:
        return {"memory": "none: a fake"}

    def refusal(self) -> str | None:
        return None

    def sandbox_facing_address(self) -> tuple[str, int]:
        return ("127.0.0.1", 0)

    async def set_egress(self, sandbox_id: str, egress: Egress) -> None:
        self.sandboxes_by_id[sandbox_id].egress = egress

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        await self._act("create", spec.sandbox_id)
        self.sandboxes_by_id.setdefault(spec.sandbox_id, FakeSandbox(spec))
        return _info(spec)

    async def info(self, sandbox_id: str) -> SandboxInfo:
        sandbox = self.sandboxes_by_id.get(sandbox_id)
        if sandbox is None:
            raise ProviderError(f"Sandbox {sandbox_id} does not exist.")
        return _info(sandbox.spec)

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        await self._act("start", sandbox_id)
        sandbox = self.sandboxes_by_id[sandbox_id]
        sandbox.launches.append(launch)
        sandbox.running = True

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        await self._act("stop", sandbox_id)
        if sandbox_id in self.sandboxes_by_id:
            self.sandboxes_by_id[sandbox_id].running = False
        self.frozen.discard(sandbox_id)
        self.paged.discard(sandbox_id)

    async def destroy(self, sandbox_id: str) -> None:
        await self._act("destroy", sandbox_id)
        self.sandboxes_by_id.pop(sandbox_id, None)
        self.frozen.discard(sandbox_id)

    async def freeze(self, sandbox_id: str) -> None:
        if not self.is_running(sandbox_id):
            raise ProviderError(f"Sandbox {sandbox_id} is not running: only a running sandbox can be frozen.")
        self.frozen.add(sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        self.frozen.discard(sandbox_id)
        self.paged.discard(sandbox_id)

    async def page_out(self, sandbox_id: str) -> None:
        await self._act("page_out", sandbox_id)
        if not self.swap:
            raise ProviderError("The host has no swap.")
        if sandbox_id not in self.frozen:
            raise ProviderError(f"Sandbox {sandbox_id} is not frozen: a page-out would fault straight back in.")
        self.paged.add(sandbox_id)

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        sandbox = self.sandboxes_by_id.get(sandbox_id)
        if sandbox is None:
            return SandboxStatus(SandboxState.MISSING)
        if not sandbox.running:
            return SandboxStatus(SandboxState.STOPPED, labels=sandbox.spec.labels)
        return SandboxStatus(SandboxState.RUNNING, f"http://{sandbox_id}.fake:18789", sandbox.spec.labels)

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        return {sandbox_id: await self.observe(sandbox_id) for sandbox_id in self.sandboxes_by_id}

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        raise NotImplementedError("the fake provider runs no commands")

    async def read_file(self, sandbox_id: str, path: str, *, max_bytes: int, tail: bool = False) -> bytes:
        raise NotImplementedError("the fake provider holds no files")

    async def open_file(self, sandbox_id: str, path: str) -> FileStream:
        raise NotImplementedError("the fake provider holds no files")

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        raise NotImplementedError("the fake provider holds no files")

    async def list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        raise NotImplementedError("the fake provider holds no files")

    async def move(self, sandbox_id: str, source: str, destination: str) -> None:
        raise NotImplementedError("the fake provider holds no files")

    async def delete_path(self, sandbox_id: str, path: str) -> None:
        raise NotImplementedError("the fake provider holds no files")

    async def mkdir(self, sandbox_id: str, path: str) -> None:
        raise NotImplementedError("the fake provider holds no files")

    async def _act(self, operation: Operation, sandbox_id: str) -> None:
        self.calls.append((operation, sandbox_id))
        if operation in self._hangs:
            await asyncio.Event().wait()
        if reason := self._failures.get(operation):
            raise ProviderError(reason)


def _info(spec: SandboxSpec) -> SandboxInfo:
    return SandboxInfo(
        sandbox_id=spec.sandbox_id,
        root=f"/sandboxes/{spec.sandbox_id}",
        home="/home/agent",
        app_port=18789,
        listen="all",
        model_endpoint_url="http://control-plane.fake:8001",
        read_only_paths={path: str(path) for path in spec.read_only_paths},
    )
