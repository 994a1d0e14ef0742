"""A process that runs only the background work (lifecycle engine, Stripe quantity sync, webhook deliveries,
scheduled backups), for deployments with separate API replicas."""

from __future__ import annotations

import asyncio

from chowder.core.settings import Settings
from chowder.domain.backup_schedule import BackupSchedules
from chowder.wiring import control_plane


async def run_worker(settings: Settings) -> None:
    """Gateways it starts reach models at this host's sandbox-facing address (`CHOWDER_MODEL_PORT`), which a
    `chowder serve` on the same host serves."""
    async with control_plane(settings) as parts:
        async with asyncio.TaskGroup() as background:
            background.create_task(parts.engine.run(), name="chowder-engine")
            background.create_task(parts.quantity_sync.run(), name="chowder-quantity-sync")
            background.create_task(parts.webhooks.run(), name="chowder-webhooks")
            background.create_task(BackupSchedules(parts.backups).run(), name="chowder-backups")
