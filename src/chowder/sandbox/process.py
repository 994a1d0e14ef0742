"""The `process` provider: each sandbox is a process tree on this host, wrapped in whatever isolation it offers.

Layout under `<data_dir>/sandboxes/<id>/`: `meta.json` (root only, `meta`) and `box/`, owned by the sandbox uid
and bound read-write into the sandbox at the same path: `root/` (the app's state, SandboxInfo.root), `home/`,
`logs/`, `tmp/`; the spec's read-only paths are bound at their own paths too. Sandboxes are spawned detached and
without `--die-with-parent`, so they outlive a crashed control plane; the next one adopts them through the pid
and start time kept in meta.json (`proctree`). cgroup limits come from `SandboxSpec.resources` (the runtime
fills them from settings), kept in meta.json too.

The control plane runs as root while the tenant controls everything under `box/`: files there are reached
only through `boxfs` (never following a symlink out); processes are known through `procfs` (pid + start time).

Hardening, each in its own module and refused rather than skipped when isolation is on: `box/` is the mount
of `disk.img`, the sandbox's disk quota (`diskquota`); every process runs under a seccomp filter (`seccomp`);
the sandboxes' parent cgroup caps them all together (`cgroup_parent`). A sandbox is frozen through its cgroup
(`freezer`), where the host has a cgroup freezer, and paged out to the host's swap through its memory cgroup
(`paging`), where the host has swap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from chowder.core.errors import ProviderError
from chowder.core.offload import off_loop
from chowder.core.settings import Settings
from chowder.sandbox.base import (
    Egress,
    ExecResult,
    LaunchSpec,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStatus,
)
from chowder.sandbox.box_operations import BoxFileOperations
from chowder.sandbox.boxfs import ROOT, BoxFiles
from chowder.sandbox.diskquota import DiskQuota
from chowder.sandbox.freezer import Freezer
from chowder.sandbox.isolation import DISABLED, NAMESPACES, USER, Cgroups, detect_isolation
from chowder.sandbox.meta import Meta, MetaStore, checked, free_port, free_uid, make_layout
from chowder.sandbox.network import HostNetwork
from chowder.sandbox.paging import Pager
from chowder.sandbox.proctree import ProcessTrees, Wrapped, finish, spawn_command
from chowder.sandbox.seccomp import detect_seccomp

T = TypeVar("T")
log = logging.getLogger("chowder.sandbox")

# The app's port inside a sandbox's own network namespace: the same for every sandbox, nothing else binds there.
APP_PORT = 18789
_DESTROY_GRACE_S = 2.0
_FAILURES = (OSError, ValueError, subprocess.SubprocessError)


class ProcessProvider(BoxFileOperations):
    """Sandboxes as host process trees: own uid, bwrap namespaces and a cgroup each, where the host allows."""

    name = "process"
    local = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._dir = settings.data_dir.resolve() / "sandboxes"
        self._meta = MetaStore(self._dir)
        self.isolation = detect_isolation(settings.sandbox_isolation, self._dir, settings.sandbox_uid_base)
        enabled = self.isolation.enabled
        self.cgroups = Cgroups(enabled, settings.host_reserved_mb)
        self.freezer = Freezer.of(self.cgroups)
        self.pager = Pager.of(self.cgroups)
        self.seccomp = detect_seccomp(self.isolation, settings.sandbox_isolation, self._dir, settings.sandbox_uid_base)
        self.disk = DiskQuota(settings.sandbox_disk_mb, settings.sandbox_isolation, self._dir)
        self.network = HostNetwork(settings.sandbox_subnet, settings.model_port) if enabled else None
        self.missing = list(self.isolation.missing)
        if enabled and not self.cgroups.available:
            self.missing.append(f"cgroups {self.cgroups.note}")
        if self.network is not None and self.network.problem is not None:
            self.missing.append(f"network namespaces unavailable: {self.network.problem}")
        if self.seccomp.required and self.seccomp.program is None:
            self.missing.append(f"seccomp {self.seccomp.note}")
        for name, problem in (("disk quota", self.disk.problem), ("parent cgroup", self.cgroups.parent.problem)):
            if problem is not None:
                self.missing.append(f"{name}: {problem}")
        self._trees = ProcessTrees(self.cgroups)

    @property
    def freezes(self) -> bool:
        return self.freezer is not None

    def isolation_report(self) -> dict[str, str]:
        if not self.isolation.enabled:
            report = dict.fromkeys(("user", "namespaces", "cgroups"), "off (isolation disabled)")
        else:
            wrapper = f"NOT in force: {'; '.join(self.isolation.missing)}" if self.isolation.missing else None
            report = {
                "user": wrapper or f"in force: {USER}",
                "namespaces": wrapper or f"in force: {NAMESPACES}",
                "cgroups": ("in force: " if self.cgroups.available else "NOT in force: ") + self.cgroups.note,
            }
        report |= {
            "parent cgroup": self.cgroups.parent.note,
            "seccomp": self.seccomp.note,
            "disk quota": self.disk.note,
            "freeze": f"available: {self.freezer.note}" if self.freezer else "unavailable: no cgroup freezer",
            "page out": f"available: {self.pager.note}" if self.pager else "unavailable: no memory cgroup to reclaim",
            "network": self.network.note if self.network else "off (isolation disabled): the host's network",
        }
        if not self.isolation.enabled:
            report["WARNING"] = DISABLED
        elif refusal := self.refusal():
            report["REFUSING"] = refusal
        return report

    def refusal(self) -> str | None:
        if not self.missing:
            return None
        return f"sandboxes cannot be isolated on this host: {'; '.join(self.missing)}"

    def sandbox_facing_address(self) -> tuple[str, int]:
        """Where the control plane listens for its sandboxes (the model endpoint): an address only they reach."""
        host = self.network.model_address if self.network else "127.0.0.1"
        return host, self._settings.model_port

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        return await _off_loop(self._create, spec)

    async def info(self, sandbox_id: str) -> SandboxInfo:
        return await _off_loop(lambda: self._info(self._meta.require(sandbox_id)))

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        await _off_loop(self._start, sandbox_id, launch)

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        await _off_loop(self._stop, sandbox_id, grace_s)

    async def destroy(self, sandbox_id: str) -> None:
        await _off_loop(self._destroy, sandbox_id)

    async def freeze(self, sandbox_id: str) -> None:
        await _off_loop(self._freeze, sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        """One write to the cgroup, a millisecond or so."""
        await _off_loop(self._thaw, sandbox_id)

    async def page_out(self, sandbox_id: str) -> None:
        """Seconds: the kernel compresses or writes out every page (about 5 s per GB into zram here)."""
        await _off_loop(self._page_out, sandbox_id)

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        return await _off_loop(self._observe, sandbox_id)

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        return await _off_loop(self._list)

    async def set_egress(self, sandbox_id: str, egress: Egress) -> None:
        """Applied at once to a running sandbox, kept for its next start otherwise."""
        await _off_loop(self._set_egress, sandbox_id, egress)

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        """Run a short command in the sandbox's isolation and cgroup, with exactly `env`; a frozen sandbox is
        thawed first (the command would join its frozen cgroup and freeze too, and a timeout could not kill it).

        On timeout its process tree is killed and the result has exit code 124 and a note at the end of stderr.
        """
        return await _off_loop(self._exec, sandbox_id, argv, env, timeout_s)

    async def _offload(self, function: Callable[[], T]) -> T:
        return await _off_loop(function)

    # Lifecycle

    def _create(self, spec: SandboxSpec) -> SandboxInfo:
        """Idempotent; a second create updates what may change between boots (egress; read-only paths: upgrades)."""
        self._refuse_if_weaker(spec.sandbox_id)
        sandbox_dir = self._sandbox_dir(spec.sandbox_id)
        with self._meta.lock():
            meta = self._meta.read(spec.sandbox_id)
            if meta is None:
                port, uid = self._allocate()
                meta = Meta(
                    spec.sandbox_id,
                    dict(spec.labels),
                    port,
                    uid,
                    spec.resources,
                    [str(p) for p in spec.read_only_paths],
                    spec.egress,
                )
                make_layout(sandbox_dir, uid, self.disk)
                self._meta.write(meta)
            read_only = [str(p) for p in spec.read_only_paths]
            if (meta.egress, meta.read_only_paths) != (spec.egress, read_only):
                meta.egress, meta.read_only_paths = spec.egress, read_only
                self._meta.write(meta)
            self._attach(meta)
        return self._info(meta)

    def _info(self, meta: Meta) -> SandboxInfo:
        """The box is bound at its own path, and so is every read-only path."""
        host, port = self.sandbox_facing_address()
        return SandboxInfo(
            meta.sandbox_id,
            root=self._root(meta),
            home=str(self._box(meta) / "home"),
            app_port=meta.port,
            listen="all" if self.network is not None else "loopback",
            model_endpoint_url=f"http://{host}:{port}",
            read_only_paths={Path(path): path for path in meta.read_only_paths},
        )

    def _refuse_if_weaker(self, sandbox_id: str) -> None:
        """Fail closed: a sandbox that cannot have every protection does not run at all."""
        if refusal := self.refusal():
            raise ProviderError(
                f"Sandbox {sandbox_id} refused: {refusal}. Fix that and start the instance again "
                "(or set CHOWDER_SANDBOX_ISOLATION=none, for development only)."
            )
        if not self.isolation.enabled:
            log.warning("sandbox %s runs WITHOUT isolation: %s", sandbox_id, DISABLED)

    def _allocate(self) -> tuple[int, int]:
        """A port and uid no other sandbox holds; the caller holds the lock, so no other process races us. In
        its own network namespace every app has the same port; only unisolated ones share the host's."""
        metas = [meta for meta in map(self._meta.read, self._meta.ids()) if meta]
        if not self.isolation.enabled:
            low, high = self._settings.gateway_port_min, self._settings.gateway_port_max
            return free_port(low, high, {meta.port for meta in metas}), os.geteuid()
        return APP_PORT, free_uid(self._settings.sandbox_uid_base, {meta.uid for meta in metas})

    def _attach(self, meta: Meta) -> str | None:
        """The sandbox's network namespace (made or repaired), or None without isolation."""
        if self.network is None:
            return None
        attachment = self.network.attach(meta.sandbox_id, meta.net_index, meta.egress)
        if attachment.index != meta.net_index:
            meta.net_index = attachment.index
            self._meta.write(meta)
        return attachment.netns_path

    def _set_egress(self, sandbox_id: str, egress: Egress) -> None:
        with self._meta.lock():
            meta = self._meta.require(sandbox_id)
            meta.egress = egress
            self._meta.write(meta)
            self._attach(meta)

    def _start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        self._refuse_if_weaker(sandbox_id)
        with self._meta.lock():
            meta = self._meta.require(sandbox_id)
            if self._trees.alive(sandbox_id, meta.main):
                return
            # Leftovers of a crashed run (e.g. setsid children) must not linger; a cgroup left frozen (its
            # processes killed meanwhile) would freeze the new ones.
            self._thaw(sandbox_id)
            self._trees.terminate(sandbox_id, meta.main, grace_s=0.0)
            missing = [path for path in meta.read_only_paths if not os.path.exists(path)]
            if missing:
                raise ProviderError(f"Read-only path {missing[0]} does not exist.")
            log_fd = self._files(meta).open_log(launch.log_file)
            try:
                with self._command(meta, list(launch.argv), die_with_parent=False) as command:
                    meta.pid, meta.start_time = self._trees.spawn(
                        sandbox_id, command, launch.env, self._cwd(meta), log_fd
                    )
            finally:
                os.close(log_fd)
            self._meta.write(meta)

    @contextlib.contextmanager
    def _command(self, meta: Meta, argv: list[str], *, die_with_parent: bool) -> Iterator[Wrapped]:
        """The wrapped command in the sandbox's cgroup, network namespace (both made here if missing), its disk
        mounted, under the seccomp filter."""
        self.disk.mount(self._dir / meta.sandbox_id)
        with self.seccomp.bwrap_args() as (hardening, seccomp_fds):
            argv = self.isolation.wrap(
                argv,
                uid=meta.uid,
                box=str(self._box(meta)),
                root=self._root(meta),
                read_only_paths=meta.read_only_paths,
                die_with_parent=die_with_parent,
                netns=self._attach(meta),
                cgroup_procs=self.cgroups.ensure(meta.sandbox_id, meta.resources) if self.cgroups.available else [],
                hardening=hardening,
            )
            yield Wrapped(argv, seccomp_fds)

    def _cwd(self, meta: Meta) -> str:
        """bwrap changes into the root itself (--chdir), inside its own mount view."""
        return "/" if self.isolation.enabled else self._root(meta)

    def _stop(self, sandbox_id: str, grace_s: float) -> None:
        meta = self._settled_meta(checked(sandbox_id))
        if meta is not None:
            self._thaw(sandbox_id)
            self._trees.terminate(meta.sandbox_id, meta.main, grace_s)

    def _settled_meta(self, sandbox_id: str) -> Meta | None:
        """Read once no create or start holds the lock: the engine gives one up by cancelling its task, while
        its thread runs on, so a stop or destroy read earlier would miss the process or directory it makes."""
        with self._meta.lock():
            return self._meta.read(sandbox_id)

    def _destroy(self, sandbox_id: str) -> None:
        sandbox_dir = self._sandbox_dir(sandbox_id)
        meta = self._settled_meta(sandbox_id)
        if meta is not None:
            self._thaw(sandbox_id)
            self._trees.terminate(sandbox_id, meta.main, _DESTROY_GRACE_S)
        if self.cgroups.available:
            self.cgroups.remove(sandbox_id)
        if self.network is not None:
            self.network.detach(sandbox_id, meta.net_index if meta else None)
        self.disk.release(sandbox_dir)
        if sandbox_dir.exists():
            shutil.rmtree(sandbox_dir)
        self._trees.forget(sandbox_id)

    def _freeze(self, sandbox_id: str) -> None:
        if self.freezer is None:
            raise ProviderError(
                "The process provider cannot freeze a sandbox on this host: it has no cgroup freezer (cgroups "
                f"{self.cgroups.note})."
            )
        meta = self._meta.require(sandbox_id)
        if not self._trees.alive(sandbox_id, meta.main):
            raise ProviderError(f"Sandbox {sandbox_id} is not running: only a running sandbox can be frozen.")
        self.freezer.freeze(sandbox_id, lambda: self.cgroups.members(sandbox_id))

    def _thaw(self, sandbox_id: str) -> None:
        if self.freezer is not None:
            self.freezer.thaw(checked(sandbox_id))

    def _page_out(self, sandbox_id: str) -> None:
        if self.pager is None:
            raise ProviderError(
                "The process provider cannot page a sandbox out on this host: no memory cgroup it can reclaim "
                f"(cgroups {self.cgroups.note}; v2 needs Linux 5.19+)."
            )
        self.pager.page_out(checked(sandbox_id))

    def _observe(self, sandbox_id: str) -> SandboxStatus:
        meta = self._meta.read(checked(sandbox_id))
        if meta is None:
            return SandboxStatus(SandboxState.MISSING)
        state = SandboxState.RUNNING if self._trees.alive(sandbox_id, meta.main) else SandboxState.STOPPED
        return SandboxStatus(state, endpoint=self._endpoint(meta), labels=dict(meta.labels))

    def _endpoint(self, meta: Meta) -> str | None:
        """The sandbox end of its veth (reachable from the host only), or host loopback without isolation."""
        if self.network is None:
            return f"http://127.0.0.1:{meta.port}"
        if meta.net_index is None:
            return None
        return f"http://{self.network.sandbox_ip(meta.net_index)}:{meta.port}"

    def _list(self) -> dict[str, SandboxStatus]:
        return {sandbox_id: self._observe(sandbox_id) for sandbox_id in self._meta.ids()}

    # Exec

    def _exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        self._refuse_if_weaker(sandbox_id)
        with self._meta.lock():  # set up and spawned before a destroy may begin, never remade after it
            meta = self._meta.require(sandbox_id)
            self._thaw(sandbox_id)
            with self._command(meta, argv, die_with_parent=True) as command:
                process = spawn_command(command, env, self._cwd(meta))
        return finish(process, timeout_s)

    # Meta and layout

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self._dir / checked(sandbox_id)

    def _box(self, meta: Meta) -> Path:
        return self._dir / meta.sandbox_id / "box"

    def _root(self, meta: Meta) -> str:
        return str(self._box(meta) / ROOT)

    def _files(self, meta: Meta) -> BoxFiles:
        self.disk.mount(self._dir / meta.sandbox_id)
        return BoxFiles(self._box(meta), meta.uid)

    def _box_files(self, sandbox_id: str) -> BoxFiles:
        return self._files(self._meta.require(sandbox_id))


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    return await off_loop("Process sandbox", _FAILURES, function, *args)
