"""Limits on `chowder/`, the cgroup parent of every sandbox, so that together they cannot starve the control plane.

Each sandbox's own cgroup caps it alone; many sandboxes at their caps could still take all the host's memory,
CPU or pids. The parent caps their sum:

- memory: MemTotal minus CHOWDER_HOST_RESERVED_MB. Past it the kernel reclaims and OOM-kills inside `chowder/`,
  i.e. a sandbox process, never the control plane or the host's daemons.
- CPU: half a default sibling's weight (v1 cpu.shares 512 of 1024, v2 cpu.weight 50 of 100). Weights only
  matter under contention: idle CPU still all goes to sandboxes, while a busy control plane (or any other busy
  task of the host) outweighs all of them together 2 to 1, without starving them to nothing on a busy host.
- pids: three quarters of what the host can have (the lower of pid_max and threads-max), the rest kept for it.
"""

from __future__ import annotations

from pathlib import Path

from chowder.core.errors import ProviderError
from chowder.core.meminfo import meminfo_bytes

_CPU_WEIGHT = {"v1": ("cpu.shares", "512"), "v2": ("cpu.weight", "50")}
_MEMORY_FILE = {"v1": "memory.limit_in_bytes", "v2": "memory.max"}
_PIDS_SHARE = 3 / 4


class ParentCgroup:
    """Writes the parent's limits once (at start-up); `note` says what is in force, `require` refuses if not."""

    def __init__(self, version: str, parents: dict[str, Path], reserved_mb: int) -> None:
        self.problem: str | None = None
        if not parents:
            self.note = "unavailable: no cgroups (see cgroups)"
            return
        try:
            self.note = f"in force: {_apply(version, parents, reserved_mb)}"
        except (OSError, ValueError) as exc:
            self.problem = f"cannot limit the sandboxes' parent cgroup: {exc}"
            self.note = f"NOT in force: {self.problem}; sandboxes refuse to start until it is fixed"

    def require(self) -> None:
        if self.problem is not None:
            raise ProviderError(f"Sandbox refused: {self.problem}.")


def _apply(version: str, parents: dict[str, Path], reserved_mb: int) -> str:
    """Write each controller's limit into its parent; what was set, in words."""
    applied = []
    if "memory" in parents:
        total = meminfo_bytes("MemTotal")
        limit = total - (reserved_mb << 20)
        if limit <= 0:
            raise ValueError(f"CHOWDER_HOST_RESERVED_MB={reserved_mb} leaves no memory of {total >> 20} MB")
        (parents["memory"] / _MEMORY_FILE[version]).write_text(str(limit))
        applied.append(f"memory {limit >> 20} MB (host {total >> 20} MB - {reserved_mb} MB reserved)")
    if "cpu" in parents:
        file, weight = _CPU_WEIGHT[version]
        (parents["cpu"] / file).write_text(weight)
        applied.append(f"{file} {weight}")
    if "pids" in parents:
        host = min(_read_int("/proc/sys/kernel/pid_max"), _read_int("/proc/sys/kernel/threads-max"))
        limit = int(host * _PIDS_SHARE)
        (parents["pids"] / "pids.max").write_text(str(limit))
        applied.append(f"pids {limit} of {host}")
    return f"{', '.join(applied)} for all sandboxes together"


def _read_int(path: str) -> int:
    return int(Path(path).read_text())
