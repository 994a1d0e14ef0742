"""The process provider's freezer on each cgroup version this host mounts (a hybrid host has both: the provider
uses one, these tests try each), with a plain process that counts; and a provider that has no freezer."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chowder.core.errors import ProviderError
from chowder.sandbox.freezer import Freezer
from chowder.sandbox.process import ProcessProvider
from tests.providers.harness import make_settings, run, spec_for

# Appends a byte every 5 ms, forking now and then: a cgroup must freeze its new processes too.
COUNTER = """
import os, sys, time
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(b"x")
        if os.fork() == 0:
            os._exit(0)
        os.wait()
        time.sleep(0.005)
"""


def _mount(version: str) -> Path | None:
    """Where this host mounts v2, or v1's freezer controller."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, options, *_ = line.split()
        if version == "v2" and fstype == "cgroup2":
            return Path(mountpoint)
        if version == "v1" and fstype == "cgroup" and "freezer" in options.split(","):
            return Path(mountpoint)
    return None


@pytest.fixture(params=["v1", "v2"])
def parent(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A parent cgroup of the test's own, removed after it (the test ends every process it put there)."""
    mount = _mount(request.param)
    if mount is None or os.geteuid() != 0:
        pytest.skip(f"no cgroup {request.param} freezer this test may use")
    made = mount / f"chowder-test-freezer-{os.getpid()}"
    made.mkdir()
    yield made
    for directory in (made / "box", made):
        if directory.exists():
            directory.rmdir()


def _held(counted: Path) -> int:
    size = counted.stat().st_size
    time.sleep(0.3)
    assert counted.stat().st_size == size, "a frozen process made progress"
    return size


def _grows(counted: Path, size: int) -> None:
    deadline = time.monotonic() + 5
    while counted.stat().st_size <= size:
        assert time.monotonic() < deadline, "a thawed process made no progress"
        time.sleep(0.01)


def test_a_frozen_cgroup_holds_every_process_until_thawed(parent: Path, tmp_path: Path) -> None:
    """On v1 the counter starts outside the freezer's cgroup, as in a sandbox an older control plane started: freeze
    moves it in (it is one of the sandbox's `members`)."""
    freezer = Freezer("v2" if (parent / "cgroup.freeze").exists() else "v1", parent)
    box = parent / "box"
    counted = tmp_path / "count"
    counter = subprocess.Popen([sys.executable, "-c", COUNTER, str(counted)])
    try:
        if freezer.version == "v2":
            box.mkdir()
            (box / "cgroup.procs").write_text(str(counter.pid))
        while not counted.exists() or counted.stat().st_size == 0:
            time.sleep(0.01)
        freezer.freeze("box", lambda: {counter.pid})
        freezer.freeze("box", lambda: {counter.pid})
        size = _held(counted)
        state = (box / "freezer.state").read_text() if freezer.version == "v1" else (box / "cgroup.events").read_text()
        assert "FROZEN" in state or "frozen 1" in state.splitlines()
        started = time.perf_counter()
        freezer.thaw("box")
        assert time.perf_counter() - started < 0.05
        freezer.thaw("box")
        _grows(counted, size)
        freezer.thaw("never-made")
    finally:
        freezer.thaw("box")
        counter.kill()
        counter.wait()


def test_a_provider_without_a_freezer_refuses_to_freeze(data_dir: Path) -> None:
    settings = make_settings(data_dir, random.randrange(21000, 32000, 100), 260000, sandbox_isolation="none")
    provider = ProcessProvider(settings)
    assert not provider.freezes and provider.isolation_report()["freeze"].startswith("unavailable")

    async def scenario() -> None:
        await provider.create(spec_for("plain"))
        with pytest.raises(ProviderError, match="cannot freeze a sandbox on this host"):
            await provider.freeze("plain")
        await provider.thaw("plain")
        await provider.destroy("plain")

    run(scenario())
