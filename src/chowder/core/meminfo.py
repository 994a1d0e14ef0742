"""/proc/meminfo, read one field at a time (the kernel's own accounting of the host's memory and swap)."""

from __future__ import annotations

from pathlib import Path

MEMINFO = Path("/proc/meminfo")
MIB = 1024 * 1024


def meminfo_bytes(field: str, source: Path = MEMINFO) -> int:
    """ValueError when the kernel does not report `field`."""
    for line in source.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) * 1024  # the kernel writes kB, meaning KiB
    raise ValueError(f"{source} has no {field}")
