"""The engine's lease on an instance kept while work on it runs, and the work abandoned once it must stop: the
instance's intent changed, or the lease is no longer surely this worker's."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from chowder.core.clock import utcnow
from chowder.core.settings import Settings
from chowder.domain.models import Desired, Status
from chowder.domain.ports.storage import Transactions

log = logging.getLogger("chowder.engine")


class LeaseWatch:
    def __init__(self, transactions: Transactions, settings: Settings, owner: str, lease: timedelta) -> None:
        self._tx = transactions
        self._settings = settings
        self._owner = owner
        self._lease = lease

    async def watch(
        self, instance_id: str, state: tuple[Status, Desired], job: asyncio.Task[None], claimed_at: float
    ) -> str | None:
        """Keeps the lease alive while the job runs, and cancels the job, saying why, once the instance's intent
        changed from `state` (e.g. deleted) or the lease is no longer surely ours: its renewal refused (it lapsed,
        and another worker may hold it), or impossible (the database unreachable) for two thirds of its length. So
        two workers never act on one instance, even when this one stalls."""
        renew_every = self._settings.lease_s / 3
        loop = asyncio.get_running_loop()
        held_since = claimed_at  # when the lease in force was taken or last extended, by this process's clock
        while not job.done():
            await asyncio.sleep(min(1.0, renew_every))
            try:
                if await self._tx(lambda uow: uow.engine.state_of(instance_id)) != state:
                    job.cancel()
                    return "its intent changed"
                if loop.time() - held_since >= renew_every:
                    asked_at = loop.time()
                    # Extends the lease this process holds; False once it lapsed (never takes it back).
                    if not await self._tx(
                        lambda uow: uow.engine.renew(instance_id, self._owner, utcnow(), self._lease)
                    ):
                        job.cancel()
                        return "its lease lapsed"
                    held_since = asked_at
            except Exception:
                log.warning("instance %s: could not renew its lease", instance_id, exc_info=True)
            if loop.time() - held_since >= 2 * renew_every:
                job.cancel()
                return "its lease could not be renewed"
        return None
