"""The sandbox provider contract: run one isolated process tree per instance and expose its port.

Providers know nothing of OpenClaw. Every method is idempotent: `create` twice for one id, `start` on a
running sandbox, `stop` on a stopped one and `destroy` on a gone one are all safe. Paths given to the
file operations are relative to the sandbox root (the directory the app sees as its state).

A running sandbox may be frozen (`freeze`): its processes keep their memory but get no CPU until `thaw`, so an idle
instance costs nothing but memory and wakes in milliseconds, not a boot. Freezing is not a state of its own: a
frozen sandbox observes RUNNING (it is alive), and the control plane keeps track of which ones it froze.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from chowder.core.errors import ProviderError

Egress = Literal["open", "none"]
# Never reachable from a sandbox, whatever its egress and whatever its provider: this-network, private, shared
# (CGNAT), loopback, link-local (cloud metadata), IETF protocol assignments, benchmarking, multicast and reserved.
BLOCKED = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
)
# Where the app must listen: every address of its own network, or only loopback (when it shares the host's).
Listen = Literal["all", "loopback"]


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
    """Where things are inside a created sandbox, as the app inside sees them; the provider decides all of it:
    its directories, the port it must listen on and on which addresses, the URL at which it reaches the control
    plane's model endpoint (the sandbox-facing listener), and where each of the spec's read-only paths appears
    (keyed by the path as the spec gave it)."""

    sandbox_id: str
    root: str
    home: str
    app_port: int
    listen: Listen
    model_endpoint_url: str
    read_only_paths: dict[Path, str]

    def inside(self, path: Path) -> str:
        """Where a file below one of the spec's read-only paths appears in the sandbox; ProviderError for a
        path below none of them (the app could not reach it)."""
        for given, seen in self.read_only_paths.items():
            if path.is_relative_to(given):
                return str(PurePosixPath(seen, path.relative_to(given)))
        raise ProviderError(f"Sandbox {self.sandbox_id} has no read-only path holding {path}.")


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
    # Whether its sandboxes take this host's memory: the engine then admits boots by it (`domain/admission.py`).
    local: bool

    @property
    def freezes(self) -> bool:
        """Whether `freeze` works for this provider on this host (it needs a cgroup freezer it can reach)."""
        ...

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

    async def info(self, sandbox_id: str) -> SandboxInfo:
        """What `create` answered for a sandbox, without creating or changing anything; ProviderError when it
        does not exist."""
        ...

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        """A no-op on a running sandbox, frozen or not (it stays as it is)."""
        ...

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        """A frozen sandbox is thawed first, so that its app gets the SIGTERM and uses the grace to exit."""
        ...

    async def destroy(self, sandbox_id: str) -> None:
        """A frozen sandbox is thawed first, as by `stop`."""
        ...

    async def freeze(self, sandbox_id: str) -> None:
        """Stop every process of a running sandbox from being scheduled, its memory kept (the cgroup freezer);
        return once the kernel says all are frozen. Idempotent. ProviderError for a sandbox that is not running,
        one that does not freeze in a few seconds (thawed again), and from a provider that cannot freeze
        (`freezes` False).

        On a frozen sandbox `exec` thaws it first (a command runs among its processes and often talks to its
        app, which would never answer) and leaves it thawed; `set_egress` and the file operations work and leave
        it frozen (`process` and `docker` reach the box from the host, not through the sandbox)."""
        ...

    async def thaw(self, sandbox_id: str) -> None:
        """Let a frozen sandbox's processes run again, at once (milliseconds). Idempotent: a no-op on a sandbox
        that is not frozen, stopped or missing, and on a provider that cannot freeze."""
        ...

    async def page_out(self, sandbox_id: str) -> None:
        """Move a frozen sandbox's memory out to the host's swap, its processes kept: a thaw faults back only what
        they touch next. ProviderError, with nothing moved, from a provider or host that cannot (no swap, or too
        little for it): sleep then stops the gateway instead."""
        ...

    async def observe(self, sandbox_id: str) -> SandboxStatus: ...

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        """Every sandbox this provider holds, running or not, by id."""
        ...

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        """Run a short command in the sandbox, running or stopped; a frozen one is thawed first (see `freeze`)."""
        ...

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
