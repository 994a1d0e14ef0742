"""The engine's bulk liveness check: running instances seen alive without a lease or a transition each.

Twice per observe interval at most, the instances due (running as wanted, awake or frozen, unleased, not seen
for an interval) are looked up on their providers, and those whose sandbox runs are marked seen alive in a
statement per few hundred. A provider is asked either for one listing of all its sandboxes or, when the due ones
are few beside what it held at its last listing (a fleet mostly asleep, say), for each due sandbox alone: so the
cost of a check follows the instances checked, not every sandbox the provider keeps for stopped or asleep ones.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.domain.ports.storage import Transactions
from chowder.sandbox.base import SandboxProvider, SandboxState

# One listing beats one lookup per due sandbox once they are this large a share of all it holds.
_LISTING_SHARE = 0.25


class Liveness:
    def __init__(self, transactions: Transactions, settings: Settings, providers: dict[str, SandboxProvider]) -> None:
        self._tx = transactions
        self._settings = settings
        self._providers = providers
        self._next_check = 0.0
        self._held: dict[str, int] = {}  # sandboxes per provider at its last listing

    async def not_running(self) -> list[str]:
        """Marks the due instances whose sandbox runs seen alive; the ids of the others (empty between checks)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_check:
            return []
        self._next_check = loop.time() + self._settings.observe_interval_s / 2
        now = utcnow()
        observe_before = now - timedelta(seconds=self._settings.observe_interval_s)
        due = await self._tx(lambda uow: uow.engine.liveness_due(now, observe_before))
        dead: list[str] = []
        for name, provider in self._providers.items():
            sandboxes = {instance_id: sandbox_id for instance_id, (on, sandbox_id) in due.items() if on == name}
            if sandboxes:
                dead += await self._check(name, provider, sandboxes, observe_before)
        return dead

    async def _check(
        self, name: str, provider: SandboxProvider, sandboxes: dict[str, str], observe_before: datetime
    ) -> list[str]:
        """`sandboxes`: instance id to sandbox id."""
        if len(sandboxes) < _LISTING_SHARE * self._held.get(name, 0):
            states = await asyncio.gather(*(provider.observe(sandbox_id) for sandbox_id in sandboxes.values()))
            running = {
                s for s, seen in zip(sandboxes.values(), states, strict=True) if seen.state == SandboxState.RUNNING
            }
        else:
            listed = await provider.sandboxes()
            self._held[name] = len(listed)
            running = {sandbox_id for sandbox_id, seen in listed.items() if seen.state == SandboxState.RUNNING}
        alive = [instance_id for instance_id, sandbox_id in sandboxes.items() if sandbox_id in running]
        await self._tx(lambda uow: uow.engine.seen_alive(alive, utcnow(), observe_before))
        return [instance_id for instance_id, sandbox_id in sandboxes.items() if sandbox_id not in running]
