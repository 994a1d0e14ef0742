"""Swap for the tests that page a sleeping gateway out: the host's own where it has some, else a zram device
made for the test (compressed RAM: nothing leaves the machine) and taken down after it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

ZRAM = Path("/sys/block/zram0")
SIZE = "6G"


def swap_active() -> bool:
    return len(Path("/proc/swaps").read_text().splitlines()) > 1


@contextlib.contextmanager
def host_swap() -> Iterator[bool]:
    """Whether the host has swap meanwhile: False where it has none and no free zram device to make it from."""
    if swap_active():
        yield True
        return
    if not ZRAM.exists() or (ZRAM / "disksize").read_text().strip() != "0":
        yield False
        return
    algorithms = (ZRAM / "comp_algorithm").read_text().replace("[", "").replace("]", "").split()
    (ZRAM / "comp_algorithm").write_text("lz4" if "lz4" in algorithms else algorithms[0])
    (ZRAM / "disksize").write_text(SIZE)
    try:
        subprocess.run(["mkswap", "/dev/zram0"], check=True, capture_output=True)
        subprocess.run(["swapon", "/dev/zram0"], check=True, capture_output=True)
        yield True
    finally:
        subprocess.run(["swapoff", "/dev/zram0"], check=False, capture_output=True)  # pages come back to RAM
        (ZRAM / "reset").write_text("1")


def summed_kib(pids: list[int], file: str, fields: tuple[str, ...]) -> list[int]:
    """Each of `fields` of /proc/<pid>/`file` (`status`, `smaps_rollup`), summed over the processes, in KiB; a
    process gone meanwhile counts nothing."""
    totals = dict.fromkeys(fields, 0)
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/{file}").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key in totals:
                totals[key] += int(value.split()[0])
    return [totals[field] for field in fields]


def swapped_and_resident_kib(pids: list[int]) -> tuple[int, int]:
    """The processes' memory in swap and in RAM (VmSwap, VmRSS), in KiB."""
    swapped, resident = summed_kib(pids, "status", ("VmSwap", "VmRSS"))
    return swapped, resident
