"""Admission to boot: which waiting instances the engine boots first, and whether the host can hold one more.

Fair: instances to boot are taken round-robin across organizations, each organization's longest waiting first, so
one tenant's burst of creates takes turns with everyone else's instead of going first (work other than boots,
quick, goes before them). Memory: a sandbox that runs on this host boots only while the host's available memory,
less what the gateways already booting will take, holds another gateway (`CHOWDER_BOOT_MEMORY_MB`); until then
the instance stays `provisioning` with the reason in `error_message`, and is `error` once its provision timeout
has passed. The warm pool refills only while there is room too. A wake skips the memory check: the instance
held its memory a moment ago, and a caller is waiting."""

from __future__ import annotations

import itertools
from pathlib import Path

from chowder.core.meminfo import MEMINFO, MIB, meminfo_bytes
from chowder.domain.models import Status
from chowder.domain.ports.instances import PendingWork


def fair_order(pending: list[PendingWork]) -> list[PendingWork]:
    """`pending` longest waiting first (as the repository gives it): the same work, boots interleaved by org."""
    boots: dict[str, list[PendingWork]] = {}
    rest = []
    for work in pending:
        if work.status == Status.PROVISIONING:
            boots.setdefault(work.organization_id, []).append(work)
        else:
            rest.append(work)
    rounds = itertools.zip_longest(*boots.values())
    return rest + [work for turn in rounds for work in turn if work is not None]


class HostMemory:
    """`need_mb` per gateway; 0 admits everything."""

    def __init__(self, need_mb: int, source: Path = MEMINFO) -> None:
        self.need_mb = need_mb
        self.source = source

    def refusal(self, booting: int) -> str | None:
        """Why one more gateway cannot boot now, with `booting` others still growing; None when it can."""
        if self.need_mb <= 0:
            return None
        available = meminfo_bytes("MemAvailable", self.source) // MIB
        if available - booting * self.need_mb >= self.need_mb:
            return None
        starting = f", {booting} gateway{'s' if booting != 1 else ''} starting" if booting else ""
        return (
            f"Waiting for memory: the host has {available} MiB available{starting}; a gateway needs "
            f"{self.need_mb} MiB (CHOWDER_BOOT_MEMORY_MB)."
        )
