"""The process trees of process sandboxes: a sandbox's main process spawned detached, every process it has
(known by pid and start time, so a reused pid is never mistaken for it), ended as a whole, and short commands
run to completion with their output bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO

from chowder.core.errors import ProviderError
from chowder.sandbox import procfs
from chowder.sandbox.base import ExecResult
from chowder.sandbox.isolation import Cgroups
from chowder.sandbox.output import EXEC_TIMEOUT_EXIT, CappedOutput, timeout_note

_KILL_WAIT_S = 10.0
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Wrapped:
    """A sandbox command line, and the fds to pass the child (the seccomp filter's)."""

    argv: list[str]
    fds: tuple[int, ...]


class ProcessTrees:
    """The sandboxes' processes on this host. Main processes are spawned without `--die-with-parent`, so they
    outlive a crashed control plane; the next one finds them again by the (pid, start time) it is given."""

    def __init__(self, cgroups: Cgroups) -> None:
        self._cgroups = cgroups
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(
        self, sandbox_id: str, command: Wrapped, env: dict[str, str], cwd: str, log_fd: int
    ) -> tuple[int, int | None]:
        """The sandbox's main process, in a session of its own, writing to `log_fd`; its pid and start time (None
        when it is gone already)."""
        process = subprocess.Popen(
            command.argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=command.fds,
        )
        self._children[sandbox_id] = process
        return process.pid, procfs.start_time(process.pid)

    def alive(self, sandbox_id: str, main: procfs.Proc | None) -> bool:
        self._reap(sandbox_id)
        return main is not None and procfs.alive(main)

    def terminate(self, sandbox_id: str, main: procfs.Proc | None, grace_s: float) -> None:
        """SIGTERM the whole tree, SIGKILL what remains after the grace; return once nothing is left."""
        procs = self._processes(sandbox_id, main, set())
        procfs.signal_all(procs, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while procs and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            procs = self._processes(sandbox_id, main, procs)
        deadline = time.monotonic() + _KILL_WAIT_S
        while procs := self._processes(sandbox_id, main, procs):
            if time.monotonic() > deadline:
                raise ProviderError(f"Sandbox {sandbox_id}: processes survived SIGKILL: {sorted(procs)}.")
            if self._cgroups.available:
                self._cgroups.kill(sandbox_id)
            procfs.signal_all(procs, signal.SIGKILL)
            time.sleep(_POLL_S)

    def forget(self, sandbox_id: str) -> None:
        self._children.pop(sandbox_id, None)

    def _processes(self, sandbox_id: str, main: procfs.Proc | None, known: set[procfs.Proc]) -> set[procfs.Proc]:
        """Every live process of the sandbox: cgroup members, and the tree below its main and `known` processes."""
        self._reap(sandbox_id)
        seeds = {proc for proc in known if procfs.alive(proc)}
        if main is not None and procfs.alive(main):
            seeds.add(main)
        if self._cgroups.available:
            members = map(procfs.proc_of, self._cgroups.members(sandbox_id))
            seeds.update(proc for proc in members if proc and procfs.alive(proc))
        return procfs.with_descendants(seeds)

    def _reap(self, sandbox_id: str) -> None:
        """Collect the exit status of a sandbox we spawned ourselves, so it does not linger as a zombie."""
        child = self._children.get(sandbox_id)
        if child is not None and child.poll() is not None:
            self._children.pop(sandbox_id, None)


def spawn_command(command: Wrapped, env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    """A short command with exactly `env`, its output piped back (see `finish`)."""
    return subprocess.Popen(
        command.argv,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        pass_fds=command.fds,
    )


def finish(process: subprocess.Popen[bytes], timeout_s: float) -> ExecResult:
    """Its exit code and output; on timeout its process tree is killed, and the result has exit code 124 and a
    note at the end of stderr."""
    out, err = (_CappedReader(pipe) for pipe in (process.stdout, process.stderr))
    try:
        code = process.wait(timeout=timeout_s)
        code, note = (128 - code if code < 0 else code), ""
    except subprocess.TimeoutExpired:
        procfs.kill_tree(process.pid)
        process.wait(timeout=_KILL_WAIT_S)
        code = EXEC_TIMEOUT_EXIT
        note = timeout_note(timeout_s)
    return ExecResult(code, out.text(), err.text() + note)


class _CappedReader(threading.Thread):
    """Drains one output pipe of a command to its end into a `CappedOutput`: the tenant controls what a command
    prints, so it may never block the command on a full pipe either."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        super().__init__(name="exec-output", daemon=True)
        assert pipe is not None
        self._pipe = pipe
        self._output = CappedOutput()
        self.start()

    def run(self) -> None:
        with self._pipe:
            while chunk := os.read(self._pipe.fileno(), 64 * 1024):
                self._output.add(chunk)

    def text(self) -> str:
        """What was read once the pipe ended (or a moment after the command, if a leftover child keeps it open)."""
        self.join(_KILL_WAIT_S)
        return self._output.text()
