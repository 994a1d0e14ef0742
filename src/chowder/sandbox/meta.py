"""What the process provider keeps of each sandbox (`<data_dir>/sandboxes/<id>/meta.json`, root's only), the
lock that serialises changes across control-plane processes (API and worker), the box layout, and the port
and uid each sandbox holds on this host."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import pwd
import re
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chowder.core.errors import ProviderError
from chowder.sandbox import procfs
from chowder.sandbox.base import Egress, Resources
from chowder.sandbox.boxfs import ROOT
from chowder.sandbox.diskquota import DiskQuota

_SANDBOX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_BOX_DIRS = (ROOT, "home", "logs", "tmp")


@dataclass(slots=True)
class Meta:
    sandbox_id: str
    labels: dict[str, str]
    port: int
    uid: int
    resources: Resources
    read_only_paths: list[str]
    egress: Egress = "open"
    net_index: int | None = None
    pid: int | None = None
    start_time: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Meta:
        return cls(**{**data, "resources": Resources(**data["resources"])})

    @property
    def main(self) -> procfs.Proc | None:
        """The sandbox's main process as last started, if it was."""
        return None if self.pid is None or self.start_time is None else (self.pid, self.start_time)


class MetaStore:
    """The meta.json of every sandbox under one directory, which only root may traverse: a launch binds the box
    in a mount namespace of its own, so no sandbox uid needs to."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)

    def ids(self) -> list[str]:
        return [path.name for path in self.directory.iterdir() if (path / "meta.json").is_file()]

    def read(self, sandbox_id: str) -> Meta | None:
        try:
            return Meta.from_json(json.loads((self.directory / sandbox_id / "meta.json").read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            raise ProviderError(f"Sandbox {sandbox_id}: meta.json is unreadable ({exc}).") from exc

    def require(self, sandbox_id: str) -> Meta:
        meta = self.read(checked(sandbox_id))
        if meta is None:
            raise ProviderError(f"Sandbox {sandbox_id} does not exist.")
        return meta

    def write(self, meta: Meta) -> None:
        path = self.directory / meta.sandbox_id / "meta.json"
        temporary = path.with_name(".meta.json.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(meta), file)
        os.replace(temporary, path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Across processes (API and worker): two never hand out one port or uid, nor start one sandbox twice."""
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def checked(sandbox_id: str) -> str:
    """Ids name directories and cgroups: no separators, no dot-files."""
    if not _SANDBOX_ID.fullmatch(sandbox_id):
        raise ProviderError(f"Invalid sandbox id {sandbox_id!r}.")
    return sandbox_id


def make_layout(sandbox_dir: Path, uid: int, disk: DiskQuota) -> None:
    sandbox_dir.mkdir(mode=0o700, exist_ok=True)
    box = sandbox_dir / "box"
    box.mkdir(mode=0o700, exist_ok=True)
    disk.provision(sandbox_dir, uid)
    make_box(box, uid)


def make_box(box: Path, uid: int) -> None:
    """The box's own directories, all the sandbox uid's (on a fresh box: nothing of the tenant's is there yet)."""
    os.chown(box, uid, uid, follow_symlinks=False)
    for name in _BOX_DIRS:
        (box / name).mkdir(mode=0o755, exist_ok=True)
        os.chown(box / name, uid, uid, follow_symlinks=False)


def free_port(low: int, high: int, taken: set[int]) -> int:
    """For an app sharing the host's network: not another sandbox's, and bindable now."""
    port = next((p for p in range(low, high + 1) if p not in taken and _bindable(p)), None)
    if port is None:
        raise ProviderError(f"No free gateway port between {low} and {high}.")
    return port


def _bindable(port: int) -> bool:
    """Free on both loopbacks (a gateway listens on 127.0.0.1 and ::1); a host without IPv6 skips ::1.

    With SO_REUSEADDR, as Node binds: a TIME_WAIT leftover doesn't count as taken, a listener does.
    """
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    return False
    return True


def free_uid(base: int, taken: set[int]) -> int:
    """From `base` up: not another sandbox's, not a named user's, not running any process (another data dir)."""
    busy = taken | procfs.process_uids()
    return next(uid for uid in itertools.count(base) if uid not in busy and not _named_user(uid))


def _named_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True
