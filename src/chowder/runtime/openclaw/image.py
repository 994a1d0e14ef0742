"""The gateway image the `docker` provider runs (`core/images.py` says what it holds): built here from the runtime
cache, never pulled.

One layer imported from a root filesystem we assemble (no base image, no registry): the same Node and OpenClaw
releases the process provider runs, under `/opt/chowder/runtime` (the cache's own layout), the shared libraries
Node and OpenClaw's native modules link against (read off `ldd` on this host), busybox for a shell and the usual
commands, and the CA bundle. The root filesystem is read-only at run time: a sandbox writes only its volume and
its tmpfs. It holds every release installed in the cache, under one tag (`CHOWDER_DOCKER_IMAGE`), and can be
pushed for other hosts.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

import docker
import docker.errors

from chowder.core.errors import ProviderError
from chowder.core.images import IMAGE_RUNTIME, TREES_LABEL
from chowder.runtime.openclaw.installer import Progress, RuntimeCache
from chowder.runtime.openclaw.versions import Release

_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_LIBRARY = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
_ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}


def build_image(
    client: docker.DockerClient, cache: RuntimeCache, releases: list[Release], tag: str, say: Progress
) -> str:
    """Import the image under `tag` and return its id; the cache must hold every release already."""
    missing = [release.version for release in releases if not cache.is_installed(release)]
    if missing:
        raise ProviderError(
            f"OpenClaw {', '.join(missing)} is not in the runtime cache: run `chowder runtime install`."
        )
    busybox = shutil.which("busybox")
    if busybox is None:
        raise ProviderError("busybox not found: the image's shell comes from it (apt-get install busybox-static).")
    trees = [cache.node_dir, *(cache.release_dir(release) for release in releases)]
    with tempfile.TemporaryDirectory(prefix="chowder-image-") as scratch:
        archive = Path(scratch) / "rootfs.tar"
        say(f"Assembling the root filesystem ({', '.join(tree.name for tree in trees)})")
        with tarfile.open(archive, "w") as tar:
            _add_base(tar, Path(busybox))
            for library in sorted(_libraries([str(cache.node), busybox, *_native_modules(trees[1:])])):
                tar.add(os.path.realpath(library), arcname=library.lstrip("/"))
            for tree in trees:
                tar.add(tree, arcname=str(IMAGE_RUNTIME.relative_to("/") / tree.relative_to(cache.root)))
        say(f"Importing {archive.stat().st_size >> 20} MiB into the engine as {tag}")
        held = ",".join(tree.name for tree in trees)
        changes = [
            f"ENV PATH={IMAGE_RUNTIME / 'node' / 'bin'}:/bin",
            "USER 65534:65534",
            f"LABEL {TREES_LABEL}={held}",
        ]
        try:
            repository, version = tag.rsplit(":", 1)
            client.api.import_image_from_file(str(archive), repository=repository, tag=version, changes=changes)
            image_id = client.images.get(tag).id or ""
        except docker.errors.DockerException as exc:
            raise ProviderError(f"The engine refused the image: {exc}") from exc
    say(f"Built {tag} ({image_id[:19]})")
    return image_id


def _add_base(tar: tarfile.TarFile, busybox: Path) -> None:
    """Directories, busybox and a link per applet in /bin, /etc, /tmp."""
    for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("sandbox", 0o755), ("etc/ssl/certs", 0o755)):
        directory = tarfile.TarInfo(name)
        directory.type, directory.mode = tarfile.DIRTYPE, mode
        tar.addfile(directory)
    tar.add(busybox.resolve(), arcname="bin/busybox")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    for name, text in _ETC.items():
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    if _CA_BUNDLE.is_file():
        tar.add(_CA_BUNDLE.resolve(), arcname=str(_CA_BUNDLE).lstrip("/"))


def _native_modules(trees: Iterable[Path]) -> list[str]:
    return [str(path) for tree in trees for path in tree.rglob("*.node") if path.is_file()]


def _libraries(binaries: list[str]) -> set[str]:
    """Every shared library (and the loader) these ELF files load on this host; files of other platforms,
    which ldd refuses, add nothing."""
    found: set[str] = set()
    for binary in binaries:
        listed = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
        if listed.returncode == 0:
            found.update(match.group(1) for match in _LIBRARY.finditer(listed.stdout))
    return found
