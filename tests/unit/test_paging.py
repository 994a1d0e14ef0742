"""Paging a sandbox out (`sandbox/paging.py`) on a cgroup tree and /proc/meminfo of files: what it asks the kernel
(v1 and v2) and that it refuses, writing nothing, when the host's swap has no room. The kernel's side is proven
end to end on a real gateway (tests/e2e/test_paged_sleep.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chowder.core.errors import ProviderError
from chowder.core.meminfo import MIB
from chowder.sandbox.paging import SWAP_RESERVE_BYTES, Pager

USAGE = 900 * MIB


def _pager(tmp_path: Path, version: str, swap_free: int) -> tuple[Pager, Path]:
    sandbox = tmp_path / "chowder" / "sb_1"
    sandbox.mkdir(parents=True)
    (sandbox / ("memory.current" if version == "v2" else "memory.usage_in_bytes")).write_text(f"{USAGE}\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       24000000 kB\nSwapTotal:       8388604 kB\nSwapFree:  {swap_free // 1024} kB\n")
    return Pager(version, sandbox.parent, meminfo), sandbox


@pytest.mark.parametrize(
    ("version", "knob", "written"), [("v1", "memory.force_empty", "0"), ("v2", "memory.reclaim", str(USAGE))]
)
def test_a_sandbox_is_paged_out_through_its_memory_cgroup(
    tmp_path: Path, version: str, knob: str, written: str
) -> None:
    pager, sandbox = _pager(tmp_path, version, swap_free=4096 * MIB)
    assert pager.page_out("sb_1") == USAGE
    assert (sandbox / knob).read_text() == written


def test_swap_without_room_for_the_sandbox_and_its_reserve_moves_nothing(tmp_path: Path) -> None:
    pager, sandbox = _pager(tmp_path, "v1", swap_free=USAGE + SWAP_RESERVE_BYTES - MIB)
    with pytest.raises(ProviderError, match="too little to page out sandbox sb_1"):
        pager.page_out("sb_1")
    assert not (sandbox / "memory.force_empty").exists()


def test_a_sandbox_without_its_cgroup_is_not_running(tmp_path: Path) -> None:
    pager, _ = _pager(tmp_path, "v2", swap_free=4096 * MIB)
    with pytest.raises(ProviderError, match="not running"):
        pager.page_out("sb_2")
