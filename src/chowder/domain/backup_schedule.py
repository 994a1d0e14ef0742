"""Scheduled backups (extension): an instance's `backup_schedule` is one backup every `every_hours` while it is
running or stopped, the newest `keep` scheduled ones kept (manual, clone and upgrade backups are never pruned).

The engine's host runs `BackupSchedules.run`: each tick it fails the backups whose run died (`Backups.sweep`), then
claims each instance whose backup is due with a compare-and-set of its `backup_due_at` (moved one interval on), so
of several workers exactly one takes it, and takes it like a manual one (the instance's lease serializes it with its
lifecycle). A failed scheduled backup is retried at the next interval, not sooner."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chowder.core.clock import utcnow
from chowder.core.errors import ChowderError
from chowder.domain.ports.backups import BackupSchedule, BackupTrigger
from chowder.domain.ports.instances import InstanceRecord, PublicInstance

if TYPE_CHECKING:
    from chowder.domain.backups import Backups

log = logging.getLogger("chowder.backups")

TICK_S = 30.0
# Scheduled backups one worker takes at once: each is a CLI run of seconds in a sandbox.
PARALLEL = 2


def schedule_of(instance: InstanceRecord | PublicInstance) -> BackupSchedule | None:
    if instance.backup_every_hours is None or instance.backup_keep is None:
        return None
    return BackupSchedule(instance.backup_every_hours, instance.backup_keep)


def schedule_columns(schedule: BackupSchedule | None, now: datetime) -> dict[str, Any]:
    """The instance's columns for `schedule` set at `now`: its first backup one interval later."""
    if schedule is None:
        return {"backup_every_hours": None, "backup_keep": None, "backup_due_at": None}
    return {
        "backup_every_hours": schedule.every_hours,
        "backup_keep": schedule.keep,
        "backup_due_at": now + timedelta(hours=schedule.every_hours),
    }


class BackupSchedules:
    def __init__(self, backups: Backups) -> None:
        self._backups = backups
        self._slots = asyncio.Semaphore(PARALLEL)
        self._running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Forever, one tick every TICK_S; a failed tick (the database away) is logged and tried again."""
        try:
            while True:
                try:
                    await self.tick()
                except Exception:
                    log.exception("backup schedule tick failed; trying again")
                await asyncio.sleep(TICK_S)
        finally:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def tick(self) -> list[asyncio.Task[None]]:
        """Sweeps, then starts the due backups this worker claimed (returned, for tests to await)."""
        await self._backups.sweep()
        now = utcnow()
        started = []
        for org_id, instance_id, due_at, every_hours in await self._backups.due(now):
            if await self._backups.claim_due(instance_id, due_at, now + timedelta(hours=every_hours)):
                task = asyncio.create_task(self._take(org_id, instance_id))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                started.append(task)
        return started

    async def _take(self, org_id: str, instance_id: str) -> None:
        async with self._slots:
            try:
                await self._backups.take(org_id, instance_id, BackupTrigger.SCHEDULED)
            except ChowderError as exc:
                log.warning("scheduled backup of instance %s: %s", instance_id, exc.detail)
            await self._backups.prune(org_id, instance_id)
