"""`create_app(settings)`: builds everything; the lifespan owns the engine, database, HTTP client,
sandbox providers and the background tasks (reconciler, Stripe quantity sync). No import-time singletons."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from chowder import __version__
from chowder.api.activity import ActivityScope
from chowder.api.audit import AuditTrail
from chowder.api.body_limit import BodyLimit, BodyLimits
from chowder.api.errors import install_error_handlers
from chowder.api.idempotency import Idempotency
from chowder.api.internal import serve_sandbox_facing
from chowder.api.rate_limits import RateLimits
from chowder.api.request_ids import RequestIds
from chowder.api.request_metrics import RequestMetrics
from chowder.api.routes import (
    audit,
    backups,
    billing,
    channels,
    files,
    health,
    instances,
    keys,
    metrics,
    organization,
    responses,
    sessions,
    skills,
    usage,
    webhooks,
)
from chowder.api.state import AppState
from chowder.core.rate_limits import ApiRateLimits, Quotas
from chowder.core.settings import Settings
from chowder.domain.audit import AuditLog
from chowder.domain.backup_schedule import BackupSchedules
from chowder.domain.billing import Billing
from chowder.domain.census import FleetCensus
from chowder.domain.chat import ChatTurns
from chowder.domain.idempotency import IdempotencyKeys
from chowder.domain.instances import Instances
from chowder.domain.intents import EngineWait
from chowder.domain.keys import ApiKeys
from chowder.domain.model_calls import ModelCalls
from chowder.domain.orgs import Organizations
from chowder.domain.power import PowerControl
from chowder.domain.recent_keys import RecentKeys
from chowder.domain.restores import Restores
from chowder.domain.sessions import SessionTranscripts
from chowder.domain.upgrades import Upgrades
from chowder.domain.usage import UsageReports
from chowder.domain.webhooks import Webhooks
from chowder.web import PREFIX, dashboard, redirect_to_dashboard
from chowder.wiring import control_plane

log = logging.getLogger("chowder")


def settle_garbage_collector() -> None:
    """Once the app is built: what it holds for its whole life (modules, routes, schemas, pools) is frozen out of
    the collector's sight (`gc.freeze`, as the gc module's docs advise for a process that allocates at start and
    then serves). A full collection otherwise walked all of it, stalling every request in flight: the p99 of a
    poll under load."""
    gc.collect()
    gc.freeze()


# FastAPI's native OpenTelemetry, off: the metrics are Prometheus's (`/metrics`) and the logs ours, and its check
# of OpenTelemetry's global providers on every request cost a status read ~8 of its ~250 us.
_NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings, *, run_engine: bool = True, serve_sandboxes: bool = True, settle_gc: bool = False
) -> FastAPI:
    """The public API. With `serve_sandboxes` the lifespan also runs the sandbox-facing listener (the model
    endpoint) on its own socket; tests of the API alone leave it off and build it with `create_internal_app`.
    `settle_gc` (`settle_garbage_collector`) is for a process that serves this one app until it exits: the CLI's,
    not a test's, which builds hundreds in turn."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.dev_model:
            log.warning(
                "DEV MODEL ON: every model call is answered by the built-in echo model, not a real provider, "
                "and no provider key is needed. For trying Chowder and for tests only; never in production."
            )
        async with control_plane(settings) as parts:
            tx = parts.transactions
            power = PowerControl(tx, parts.providers, settings, parts.engine.wake)
            service = Instances(
                tx,
                parts.box,
                settings,
                parts.providers,
                parts.runtime,
                wake_engine=parts.engine.wake,
                wake_quantity_sync=parts.quantity_sync.wake,
                power=power,
            )
            need_key = not settings.dev_model
            sessions = parts.turns
            state = app.state.chowder = AppState(
                settings=settings,
                instances=service,
                runtime=parts.runtime,
                http=parts.http,
                billing=Billing(settings, tx, parts.stripe, parts.quantity_sync.wake),
                orgs=Organizations(tx, parts.box),
                keys=ApiKeys(tx, RecentKeys(settings.auth_cache_s)),
                usage=UsageReports(tx),
                chat=ChatTurns(tx, parts.box, need_key=need_key),
                model_calls=ModelCalls(
                    tx,
                    parts.box,
                    sessions.key_of,
                    need_key=need_key,
                    on_use=power.hold,
                    on_tokens=parts.metrics.count_tokens,
                ),
                sessions=sessions,
                transcripts=SessionTranscripts(service, parts.runtime.sessions, sessions),
                power=power,
                idempotency=IdempotencyKeys(tx),
                rate_limits=rate_limits,
                audit=AuditLog(tx),
                metrics=parts.metrics,
                census=FleetCensus(tx, parts.metrics),
                backups=parts.backups,
                webhooks=Webhooks(tx, parts.box),
                restores=Restores(tx, service, parts.backups, EngineWait(tx, parts.engine.wake), settings),
                upgrades=Upgrades(tx, parts.runtime, parts.backups, EngineWait(tx, parts.engine.wake), settings),
            )
            # The quantity sync runs in API replicas too: the process that made a change pushes it at once, and
            # its lease keeps two processes from pushing one org together.
            tasks = [
                asyncio.create_task(parts.quantity_sync.run(), name="chowder-quantity-sync"),
                asyncio.create_task(power.run(), name="chowder-activity-heartbeat"),
            ]
            if run_engine:
                tasks.append(asyncio.create_task(parts.engine.run(), name="chowder-engine"))
                tasks.append(asyncio.create_task(parts.webhooks.run(), name="chowder-webhooks"))
                tasks.append(asyncio.create_task(BackupSchedules(parts.backups).run(), name="chowder-backups"))
            provider = parts.providers[settings.sandbox_provider]
            try:
                async with serve_sandbox_facing(state, provider) if serve_sandboxes else contextlib.nullcontext():
                    if settle_gc:
                        settle_garbage_collector()
                    yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    rate_limits = ApiRateLimits(Quotas.of(settings))
    app = FastAPI(title="Chowder", version=__version__, lifespan=lifespan, telemetry=_NO_OPENTELEMETRY)
    install_error_handlers(app)
    # Innermost first. The audit sees only what reached the routes; idempotency reads bodies already held to their
    # limit; a flood is refused before anything reads it; every answer, a refusal too, carries its request id.
    app.add_middleware(AuditTrail)
    app.add_middleware(Idempotency)
    app.add_middleware(BodyLimit, limits=BodyLimits.from_settings(settings))
    app.add_middleware(ActivityScope)
    app.add_middleware(RateLimits, limits=rate_limits)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestIds)
    # The instances' routes right after the probe's one route, the ones every client reads most: FastAPI tries
    # each route in turn (twice within the router that matches), and the paths of different routers never overlap.
    routers = (
        health,
        instances,
        organization,
        billing,
        keys,
        responses,
        files,
        channels,
        skills,
        sessions,
        backups,
        usage,
        audit,
        metrics,
        webhooks,
    )
    for module in routers:
        app.include_router(module.router)
    app.add_route(PREFIX, redirect_to_dashboard, include_in_schema=False)
    app.mount(PREFIX, dashboard(settings))
    return app
