"""The `process` provider's hardening, tried for real: from inside sandboxes, and on the host's cgroups and mounts."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from chowder.core.settings import Settings
from chowder.sandbox.process import ProcessProvider
from tests.providers.test_process_provider import make_settings, run


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Own port window and uid base, as in the contract tests."""
    return make_settings(data_dir, random.randrange(21000, 32000, 100), 260000 + random.randrange(0, 30000, 100))


@pytest.fixture
def provider(settings: Settings) -> Iterator[ProcessProvider]:
    """Every sandbox is destroyed afterwards (processes, cgroups)."""
    if os.geteuid() != 0:
        pytest.skip("per-sandbox uids and cgroups need root")
    provider = ProcessProvider(settings)
    yield provider

    async def destroy_all() -> None:
        for sandbox_id in await provider.list():
            await provider.destroy(sandbox_id)

    run(destroy_all())


def test_parent_cgroup_caps_all_sandboxes_together(provider: ProcessProvider, settings: Settings) -> None:
    if not provider.cgroups.available:
        pytest.skip(f"cgroups not writable here: {provider.cgroups.note}")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").open() if line.startswith("MemTotal:"))
    memory = memory_kb * 1024 - (settings.host_reserved_mb << 20)
    host_pids = min(int(Path(f"/proc/sys/kernel/{name}").read_text()) for name in ("pid_max", "threads-max"))
    expected = {
        "v1": {"memory.limit_in_bytes": memory // 4096 * 4096, "cpu.shares": 512, "pids.max": host_pids * 3 // 4},
        "v2": {"memory.max": memory // 4096 * 4096, "cpu.weight": 50, "pids.max": host_pids * 3 // 4},
    }[provider.cgroups.version]
    parents = {directory.parent for directory in provider.cgroups.dirs("any")}
    for file, value in expected.items():
        (found,) = [parent / file for parent in parents if (parent / file).exists()]
        assert int(found.read_text()) == value, file
    assert all(parent.name == "chowder" for parent in parents)
