"""The sandbox provider contract: run one isolated process tree per instance and expose its port.

Providers know nothing of OpenClaw. Every method is idempotent: `create` twice for one id, `start` on a
running sandbox, `stop` on a stopped one and `destroy` on a gone one are all safe. Paths given to the
file operations are relative to the sandbox root (the directory the app sees as its state).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol

Egress = Literal["open", "none"]


class SandboxState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Resources:
    memory_mb: int
    cpus: float
    pids: int


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What a sandbox is made of; labels let a provider find its sandboxes again after a restart."""

    sandbox_id: str
    labels: dict[str, str]
    resources: Resources
    read_only_paths: tuple[Path, ...] = ()
    # "open": the public internet (never the host, other sandboxes, private or link-local ranges); "none": only
    # the control plane's sandbox-facing endpoint.
    egress: Egress = "open"


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """Where things are inside a created sandbox, as the app inside sees them: its directories, the port it must
    listen on (on every address of its own network, or on loopback when it shares the host's), and the URL at
    which it reaches the control plane's sandbox-facing endpoint."""

    sandbox_id: str
    root: str
    home: str
    app_port: int
    app_listens_on_all: bool
    control_plane_url: str


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """The one long-running process of a sandbox. `env` carries secrets: never log it. `log_file` (its
    stdout and stderr) is relative to the sandbox root, so the file operations can read it back."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    log_file: str = "logs/app.out"


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    state: SandboxState
    endpoint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    path: str
    is_dir: bool
    size: int
    mod_time: float
    mode: int


@dataclass(frozen=True, slots=True)
class FileStream:
    """A regular file opened for reading: its size when opened, then exactly that many bytes in chunks. The
    file stays open until the chunks run out or are closed (`aclose`)."""

    size: int
    chunks: AsyncGenerator[bytes, None]


class SandboxProvider(Protocol):
    """Implemented by `process` now; `docker` and `kubernetes` later."""

    name: str

    def isolation_report(self) -> dict[str, str]:
        """What isolation is actually in force for new sandboxes, for `chowder doctor` and the start log."""
        ...

    def refusal(self) -> str | None:
        """Why no sandbox can start on this host (a protection it cannot apply), or None."""
        ...

    def sandbox_facing_address(self) -> tuple[str, int]:
        """Where the control plane must listen so its sandboxes (and only they) reach it."""
        ...

    async def set_egress(self, sandbox_id: str, egress: Egress) -> None: ...

    async def create(self, spec: SandboxSpec) -> SandboxInfo: ...

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None: ...

    async def stop(self, sandbox_id: str, grace_s: float) -> None: ...

    async def destroy(self, sandbox_id: str) -> None: ...

    async def observe(self, sandbox_id: str) -> SandboxStatus: ...

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        """Every sandbox this provider holds, running or not, by id."""
        ...

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult: ...

    async def read_file(self, sandbox_id: str, path: str, *, max_bytes: int, tail: bool = False) -> bytes:
        """A regular file's content, held in memory: FileTooLarge beyond `max_bytes`, or with `tail` its last
        `max_bytes`. Whatever the tenant put there, it never blocks: a FIFO or device is a BadRequest."""
        ...

    async def open_file(self, sandbox_id: str, path: str) -> FileStream:
        """A regular file to stream, of any size: checked (a FIFO or device is a BadRequest) before a byte is read."""
        ...

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None: ...

    async def list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]: ...

    async def move(self, sandbox_id: str, source: str, destination: str) -> None: ...

    async def delete_path(self, sandbox_id: str, path: str) -> None: ...

    async def mkdir(self, sandbox_id: str, path: str) -> None: ...
