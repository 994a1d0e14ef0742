"""/proc: process identity, liveness and trees. A pid alone may have been reused, so a process is known by
(pid, start time)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

Proc = tuple[int, int]  # (pid, start time)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) from /proc/<pid>/stat; the comm field may contain spaces and parentheses."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def start_time(pid: int) -> int | None:
    found = _stat(pid)
    return found[2] if found else None


def proc_of(pid: int) -> Proc | None:
    start = start_time(pid)
    return None if start is None else (pid, start)


def alive(proc: Proc) -> bool:
    """Same process (start time matches) and not a zombie: PID 1 here may never reap an adopted sandbox."""
    found = _stat(proc[0])
    return found is not None and found[2] == proc[1] and found[0] not in ("Z", "X")


def with_descendants(seeds: set[Proc]) -> set[Proc]:
    """`seeds` plus every live process below them, following ppid links (setsid does not change those)."""
    children: dict[int, list[Proc]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (found := _stat(int(entry.name))) and found[0] not in ("Z", "X"):
            children.setdefault(found[1], []).append((int(entry.name), found[2]))
    result, queue = set(seeds), [pid for pid, _ in seeds]
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in result:
                result.add(child)
                queue.append(child[0])
    return result


def signal_all(procs: Iterable[Proc], sig: signal.Signals) -> None:
    for pid, start in procs:
        if alive((pid, start)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def kill_tree(pid: int) -> None:
    """SIGKILL a command we spawned (its own session) and everything below it."""
    root = proc_of(pid)
    signal_all(with_descendants({root} if root else set()), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def process_uids() -> set[int]:
    uids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                uids.add(entry.stat().st_uid)
    return uids
