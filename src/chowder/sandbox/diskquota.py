"""A disk quota per sandbox: its `box/` is the root of a filesystem of its own, a sparse ext4 image loop-mounted there.

A tenant filling its disk then gets ENOSPC inside its own filesystem, while the control plane's data dir and the
other sandboxes, on the host filesystem, keep working. Project quotas (ext4, XFS) would do it without loop devices
but need the data dir's filesystem made and mounted for them (`tune2fs -O project,quota` on an unmounted
filesystem, `prjquota`), which an existing host rarely has; loop devices work on any filesystem.

`<sandbox dir>/disk.img` (root only, 0600; the tenant never sees the raw image, only the mounted tree) is made at
create, sparse, with its journal and inode tables left unwritten: ~1 MB of host disk whatever the quota. It is
mounted `nosuid,nodev`, and stays mounted across stop and start and control-plane restarts (kernel state); after
a host reboot it is mounted again on first use. Destroy unmounts it (the loop device goes with it) and the sandbox
dir's removal deletes it. Images are sparse, so quotas can add up to more than the host disk holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from chowder.core.errors import ProviderError

IMAGE = "disk.img"
_BOX = "box"
_MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"
_TOOLS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_FIX = (
    "It needs root (CAP_SYS_ADMIN), mkfs.ext4 (e2fsprogs) and loop devices (/dev/loop-control: `modprobe loop`; "
    "in a container, pass the loop devices in); or set CHOWDER_SANDBOX_ISOLATION=none (development only)"
)
_TIMEOUT_S = 60.0


class DiskQuota:
    """Makes, mounts and unmounts the sandboxes' images; detected once by making and mounting a real one."""

    def __init__(self, size_mb: int, mode: str, sandboxes_dir: Path) -> None:
        self.size_mb = size_mb
        self.required = mode != "none"
        self.problem: str | None = None
        if not self.required:
            self.note = "off (isolation disabled): sandboxes share the host filesystem"
            return
        self.problem = _probe(size_mb, sandboxes_dir)
        if self.problem is None:
            self.note = f"in force: {size_mb} MB ext4 image per sandbox, loop-mounted on its box (nosuid,nodev)"
        else:
            self.note = f"NOT in force: {self.problem}; sandboxes refuse to be created or started until it is fixed"

    def provision(self, sandbox_dir: Path, uid: int) -> None:
        """Make the image (once) and mount it on `box/`, whose root then belongs to `uid`, mode 0700."""
        if not self.required:
            return
        if self.problem is not None:
            raise ProviderError(f"Sandbox refused: no disk quota ({self.problem}). {_FIX}.")
        image = sandbox_dir / IMAGE
        if not image.exists():
            _make_image(image, self.size_mb, uid)
        self.mount(sandbox_dir)
        box = sandbox_dir / _BOX
        box.chmod(0o700)
        os.chown(box, uid, uid, follow_symlinks=False)

    def mount(self, sandbox_dir: Path) -> None:
        """Mount the image on `box/` unless it is mounted (idempotent; also after a host reboot).

        Called before anything touches the box: an unmounted box is an empty root-owned directory, and what was
        written there would not count against the quota and would vanish under the next mount.
        """
        box, image = sandbox_dir / _BOX, sandbox_dir / IMAGE
        if os.path.ismount(box):
            return
        if not image.exists():
            if self.required:
                self._move_onto_image(sandbox_dir)
            return
        with _locked(image):
            if not os.path.ismount(box):
                if self.problem is not None:
                    raise ProviderError(f"Sandbox refused: no disk quota ({self.problem}). {_FIX}.")
                _run("mount", "-t", "ext4", "-o", _MOUNT_OPTIONS, str(image), str(box))

    def _move_onto_image(self, sandbox_dir: Path) -> None:
        """A sandbox made before disk quotas (a plain `box/` directory) gets its image now, its files copied in
        with owners and modes; the old tree goes only once the copy is complete and mounted in its place."""
        if self.problem is not None:
            raise ProviderError(f"Sandbox refused: no disk quota ({self.problem}). {_FIX}.")
        box, image = sandbox_dir / _BOX, sandbox_dir / IMAGE
        old = sandbox_dir / f"{_BOX}.before-quota"
        uid = box.stat().st_uid
        _make_image(image, self.size_mb, uid)
        with tempfile.TemporaryDirectory(dir=sandbox_dir) as staging:
            _run("mount", "-t", "ext4", "-o", _MOUNT_OPTIONS, str(image), staging)
            try:
                _run("cp", "-a", f"{box}/.", staging)
            except ProviderError as exc:
                image.unlink()
                raise ProviderError(f"Sandbox {sandbox_dir.name}: its files do not fit its disk quota: {exc}") from exc
            finally:
                _run("umount", staging)
        box.rename(old)
        box.mkdir(mode=0o700)
        _run("mount", "-t", "ext4", "-o", _MOUNT_OPTIONS, str(image), str(box))
        shutil.rmtree(old)

    def release(self, sandbox_dir: Path) -> None:
        """Unmount `box/` (its loop device is freed with it); the caller then deletes the sandbox dir.

        The sandbox's processes are gone by now; if a straggling open file (a file operation still running)
        keeps the mount busy, it is detached lazily and freed when that file closes.
        """
        box = sandbox_dir / _BOX
        if not os.path.ismount(box):
            return
        try:
            _run("umount", str(box))
        except ProviderError:
            _run("umount", "--lazy", str(box))


def _make_image(image: Path, size_mb: int, uid: int) -> None:
    """Sparse file + mkfs under a temporary name, then renamed: a crash never leaves a half-made image."""
    temporary = image.with_name(f".{IMAGE}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size_mb << 20)
    finally:
        os.close(fd)
    # -m 0: no blocks reserved for root, the quota is the tenant's. lazy_journal_init: the journal of a fresh
    # sparse file already reads as zeros (mke2fs knows the same of the inode tables), so neither is written.
    extended = f"root_owner={uid}:{uid},lazy_journal_init=1"
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", extended, str(temporary))
    os.replace(temporary, image)


def _probe(size_mb: int, sandboxes_dir: Path) -> str | None:
    """Make, mount and unmount a throw-away image as a sandbox's would be; what failed, or None."""
    if os.geteuid() != 0:
        return "the control plane does not run as root"
    missing = [tool for tool in ("mkfs.ext4", "mount", "umount") if not shutil.which(tool, path=_TOOLS_PATH)]
    if missing:
        return f"{', '.join(missing)} not found"
    probe_dir = Path(tempfile.mkdtemp(prefix=".disk-probe-", dir=sandboxes_dir))
    try:
        (probe_dir / _BOX).mkdir()
        _make_image(probe_dir / IMAGE, size_mb, 0)
        _run("mount", "-t", "ext4", "-o", _MOUNT_OPTIONS, str(probe_dir / IMAGE), str(probe_dir / _BOX))
        _run("umount", str(probe_dir / _BOX))
    except (ProviderError, OSError) as exc:
        return str(exc)
    finally:
        if os.path.ismount(probe_dir / _BOX):
            subprocess.run(["umount", "--lazy", str(probe_dir / _BOX)], env={"PATH": _TOOLS_PATH}, check=False)
        shutil.rmtree(probe_dir, ignore_errors=True)
    return None


def _run(*argv: str) -> None:
    """Run an e2fsprogs/util-linux tool; its own message (in English) when it fails."""
    try:
        result = subprocess.run(
            argv,
            env={"PATH": _TOOLS_PATH, "LC_ALL": "C"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProviderError(f"{argv[0]} failed: {exc}") from exc
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip() or f"exit code {result.returncode}"
        raise ProviderError(f"{argv[0]} failed: {message}")


@contextlib.contextmanager
def _locked(image: Path) -> Iterator[None]:
    """Across processes (API and worker): one sandbox's image is mounted once, not twice on top of itself."""
    fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
