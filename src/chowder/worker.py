"""A process that runs only the lifecycle engine, for deployments with separate API replicas."""

from __future__ import annotations

import logging

import httpx

from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from chowder.domain.reconciler import Engine
from chowder.persistence.db import Database, migrate
from chowder.runtime.openclaw.runtime import OpenClawRuntime
from chowder.sandbox.registry import make_provider

log = logging.getLogger("chowder.worker")


async def run_worker(settings: Settings, control_plane_url: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    migrate(db.engine)
    provider = make_provider(settings)
    log.info("worker: sandbox provider %s; isolation: %s", provider.name, provider.isolation_report())
    async with httpx.AsyncClient() as http:
        runtime = OpenClawRuntime(settings, http, control_plane_url)
        engine = Engine(db, SecretBox.from_settings(settings), settings, {provider.name: provider}, runtime)
        try:
            await engine.run()
        finally:
            db.dispose()
