"""A process that runs only the background work (lifecycle engine, Stripe quantity sync), for deployments with
separate API replicas."""

from __future__ import annotations

import asyncio

from chowder.core.settings import Settings
from chowder.wiring import control_plane


async def run_worker(settings: Settings, control_plane_url: str) -> None:
    async with control_plane(settings, control_plane_url) as parts:
        async with asyncio.TaskGroup() as background:
            background.create_task(parts.engine.run(), name="chowder-engine")
            background.create_task(parts.quantity_sync.run(), name="chowder-quantity-sync")
