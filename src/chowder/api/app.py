"""`create_app(settings)`: builds everything; the lifespan owns the engine, database, HTTP client,
sandbox providers and the reconciler task. No import-time singletons."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from chowder import __version__
from chowder.api.errors import install_error_handlers
from chowder.api.routes import (
    channels,
    files,
    health,
    instances,
    keys,
    model_gateway,
    organization,
    responses,
    skills,
    usage,
)
from chowder.api.state import AppState
from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from chowder.domain.instances import Instances
from chowder.domain.reconciler import Engine
from chowder.persistence.db import Database, migrate
from chowder.runtime.openclaw.runtime import OpenClawRuntime
from chowder.sandbox.registry import make_provider

log = logging.getLogger("chowder")


def create_app(settings: Settings, *, control_plane_url: str, run_engine: bool = True) -> FastAPI:
    """`control_plane_url` is where sandboxes reach this server (its model endpoint)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.dev_model:
            log.warning(
                "DEV MODEL ON: every model call is answered by the built-in echo model, not a real provider, "
                "and no provider key is needed. For trying Chowder and for tests only; never in production."
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        await asyncio.to_thread(migrate, db.engine)
        box = SecretBox.from_settings(settings)
        provider = make_provider(settings)
        log.info("sandbox provider %s; isolation: %s", provider.name, provider.isolation_report())
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=1000)) as http:
            runtime = OpenClawRuntime(settings, http, control_plane_url)
            providers = {provider.name: provider}
            engine = Engine(db, box, settings, providers, runtime)
            service = Instances(db, box, settings, providers, runtime, engine.wake)
            app.state.chowder = AppState(settings=settings, db=db, box=box, instances=service, http=http)
            task = asyncio.create_task(engine.run(), name="chowder-engine") if run_engine else None
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                db.dispose()

    app = FastAPI(title="Chowder", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    for module in (health, organization, keys, instances, responses, files, channels, skills, usage, model_gateway):
        app.include_router(module.router)
    return app
