"""Freezing a process sandbox: the kernel's cgroup freezer stops scheduling every process of its cgroup, their
memory kept, until thawed. Nothing inside can notice or refuse it.

- v2: every non-root cgroup has `cgroup.freeze` (kernel 5.2+); `cgroup.events` says `frozen 1` once it is done.
- v1: the `freezer` controller, a hierarchy of its own where each sandbox has a cgroup too (`isolation.Cgroups`);
  `freezer.state` reads FREEZING until every task is stopped, then FROZEN.

A process that joins a frozen cgroup is frozen at once, the sandbox's exec helpers included: the provider thaws a
sandbox before it runs a command there, and before it stops it (a frozen process handles no signal; on v1 not even
SIGKILL).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from chowder.core.errors import ProviderError
from chowder.sandbox.isolation import Cgroups

_FREEZE_WAIT_S = 5.0
_POLL_S = 0.005


class Freezer:
    """Freezes and thaws the sandboxes' cgroups below `parent` (the v2 parent, or the v1 freezer hierarchy's)."""

    def __init__(self, version: str, parent: Path) -> None:
        self.version = version
        self._parent = parent

    @classmethod
    def of(cls, cgroups: Cgroups) -> Freezer | None:
        """The freezer of the sandboxes' cgroups, or None: no cgroups, a v2 kernel older than 5.2, v1 without the
        freezer mounted."""
        if cgroups.version == "v1":
            parent = cgroups.parents.get("freezer")
        else:
            parent = next(iter(cgroups.parents.values()), None)
            parent = parent if parent is not None and (parent / "cgroup.freeze").exists() else None
        return None if parent is None else cls(cgroups.version, parent)

    @property
    def note(self) -> str:
        return f"cgroup {self.version} {'cgroup.freeze' if self.version == 'v2' else 'freezer'} under {self._parent}"

    def freeze(self, name: str, members: Callable[[], set[int]]) -> None:
        """Return once every process of the cgroup is frozen; idempotent. Past `_FREEZE_WAIT_S` (a process stuck
        in the kernel) it is thawed again and ProviderError raised: never left half-frozen.

        `members`: every process of the sandbox (its cgroups in every hierarchy). On v1 any not in the freezer's
        cgroup joins it first: sandboxes started by a control plane that gave them no freezer cgroup run on."""
        directory = self._parent / name
        if self.version == "v1":
            directory.mkdir(exist_ok=True)
        self._write(directory, frozen=True)
        deadline = time.monotonic() + _FREEZE_WAIT_S
        while not self._frozen(directory, members):
            if time.monotonic() > deadline:
                self.thaw(name)
                raise ProviderError(f"Sandbox {name} did not freeze within {_FREEZE_WAIT_S:g} s; it runs on.")
            time.sleep(_POLL_S)

    def thaw(self, name: str) -> None:
        """At once (the kernel wakes every process on the write); nothing to do for a cgroup that is not there."""
        with contextlib.suppress(FileNotFoundError):
            self._write(self._parent / name, frozen=False)

    def _write(self, directory: Path, *, frozen: bool) -> None:
        if self.version == "v2":
            (directory / "cgroup.freeze").write_text("1" if frozen else "0")
        else:
            (directory / "freezer.state").write_text("FROZEN" if frozen else "THAWED")

    def _frozen(self, directory: Path, members: Callable[[], set[int]]) -> bool:
        if self.version == "v2":
            return "frozen 1" in (directory / "cgroup.events").read_text().splitlines()
        # Done only after a pass that found none outside: one outside could have forked another meanwhile.
        procs = directory / "cgroup.procs"
        outside = members() - {int(pid) for pid in procs.read_text().split()}
        for pid in outside:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                procs.write_text(str(pid))
        return not outside and (directory / "freezer.state").read_text().strip() == "FROZEN"
