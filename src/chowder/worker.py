"""A process that runs only the lifecycle engine, for deployments with separate API replicas."""

from __future__ import annotations

from chowder.core.settings import Settings
from chowder.wiring import control_plane


async def run_worker(settings: Settings, control_plane_url: str) -> None:
    async with control_plane(settings, control_plane_url) as parts:
        await parts.engine.run()
