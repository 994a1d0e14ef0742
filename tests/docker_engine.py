"""A real Docker engine for the docker provider's tests: the one DOCKER_HOST names, or else one started here from
Debian's docker.io (`dockerd`), private to the test run and stopped after it; and the gateway image in it, built by
the same code as `chowder runtime image` (once: the engine's data dir is kept in the repo's .chowder, so a second
local run finds it).

The engine started here leaves the host's firewall alone (`--iptables=false`, no default bridge): the sandbox
networks' rules are Chowder's own nftables table, as with any engine."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors

from chowder.core.images import DEFAULT_IMAGE, TREES_LABEL
from chowder.runtime.openclaw.image import build_image
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES

_READY_S = 60.0


class EngineMissing(Exception):
    """Why no engine can run here (a test skips with it)."""


@contextmanager
def docker_engine(repo: Path) -> Iterator[str]:
    """The engine's DOCKER_HOST URL, while it runs."""
    given = os.environ.get("DOCKER_HOST")
    if given:
        yield given
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineMissing("no Docker engine: install docker.io (./dev test does as root) or set DOCKER_HOST")
    if os.geteuid() != 0:
        raise EngineMissing("dockerd needs root; or set DOCKER_HOST to a running engine")
    data = repo / ".chowder" / "test-docker"
    # Sockets need a short path: the exec root lives in /run, one per checkout.
    run = Path("/run") / f"chowder-test-docker-{hashlib.sha256(str(repo).encode()).hexdigest()[:8]}"
    data.mkdir(parents=True, exist_ok=True)
    run.mkdir(mode=0o700, exist_ok=True)
    socket = run / "docker.sock"
    url = f"unix://{socket}"
    argv = [
        dockerd,
        f"--data-root={data}",
        f"--exec-root={run / 'exec'}",
        f"--pidfile={run / 'dockerd.pid'}",
        f"--host={url}",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
    ]
    with open(data / "dockerd.log", "ab") as log:
        daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(url, daemon, data / "dockerd.log")
        yield url
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def _wait_ready(url: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _READY_S
    while True:
        if daemon.poll() is not None:
            raise EngineMissing(f"dockerd exited ({daemon.returncode}): {log.read_text()[-800:]}")
        try:
            docker.DockerClient(base_url=url, timeout=5).ping()
            return
        except docker.errors.DockerException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def gateway_image(url: str, runtime_dir: Path) -> str:
    """The default release's gateway image in the engine, built from `runtime_dir` unless it holds it already."""
    release = RELEASES[DEFAULT_RELEASE]
    cache = RuntimeCache(runtime_dir)
    tag = DEFAULT_IMAGE
    client = docker.DockerClient(base_url=url, timeout=600)
    try:
        held = (client.images.get(tag).labels or {}).get(TREES_LABEL, "").split(",")
        if {"node", cache.release_dir(release).name} <= set(held):
            return tag
    except docker.errors.ImageNotFound:
        pass
    build_image(client, cache, [release], tag, print)
    return tag
