"""The long-lived parts every control-plane process needs (API server and worker alike), built in one place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import stripe

from chowder.backupstore import make_store
from chowder.core.crypto import SecretBox
from chowder.core.metrics import Metrics
from chowder.core.settings import Settings
from chowder.domain.backups import Backups
from chowder.domain.billing import stripe_client
from chowder.domain.ports.storage import Transactions
from chowder.domain.ports.turns import SessionTurns
from chowder.domain.quantity_sync import QuantitySync
from chowder.domain.reconciler import Engine
from chowder.domain.turns import SessionLocks
from chowder.domain.webhook_delivery import WebhookDeliveries
from chowder.persistence.db import Database, migrate, sqlite_file
from chowder.persistence.host_turns import HostTurns, lock_file_of
from chowder.persistence.store import SqlTransactions
from chowder.persistence.turns import DatabaseTurns
from chowder.runtime.openclaw.runtime import OpenClawRuntime
from chowder.sandbox.base import SandboxProvider
from chowder.sandbox.registry import make_provider

log = logging.getLogger("chowder")


@dataclass(frozen=True, slots=True)
class ControlPlane:
    db: Database
    transactions: Transactions
    box: SecretBox
    http: httpx.AsyncClient
    providers: dict[str, SandboxProvider]
    runtime: OpenClawRuntime
    engine: Engine
    stripe: stripe.StripeClient | None
    quantity_sync: QuantitySync
    turns: SessionTurns
    metrics: Metrics
    webhooks: WebhookDeliveries
    backups: Backups


@asynccontextmanager
async def control_plane(settings: Settings) -> AsyncIterator[ControlPlane]:
    """Database migrated, secrets, sandbox provider (its isolation logged), HTTP client, runtime, engine, the
    Stripe quantity sync and the webhook delivery worker."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await asyncio.to_thread(migrate, db.engine)
    box = SecretBox.from_settings(settings)
    provider = make_provider(settings)
    log.info("sandbox provider %s; isolation: %s", provider.name, provider.isolation_report())
    if refusal := provider.refusal():
        log.error("NO SANDBOX WILL START: %s", refusal)
    elif settings.sandbox_isolation == "none":
        log.warning("SANDBOX ISOLATION IS OFF (CHOWDER_SANDBOX_ISOLATION=none): for development only")
    providers = {provider.name: provider}
    transactions = SqlTransactions(db)
    try:
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=1000)) as http:
            runtime = OpenClawRuntime(settings, http)
            metrics = Metrics()
            store = make_store(settings)
            backups = Backups(transactions, box, settings, providers, runtime.archives, store, lambda: engine.wake())
            engine = Engine(transactions, box, settings, providers, runtime, metrics, backups=backups)
            client = stripe_client(settings)
            quantity_sync = QuantitySync(settings, transactions, client)
            turns = session_turns(settings.resolved_database_url, db)
            webhooks = WebhookDeliveries(transactions, box, settings, metrics)
            yield ControlPlane(
                db,
                transactions,
                box,
                http,
                providers,
                runtime,
                engine,
                client,
                quantity_sync,
                turns,
                metrics,
                webhooks,
                backups=backups,
            )
    finally:
        db.dispose()


def session_turns(database_url: str, db: Database) -> SessionTurns:
    """On PostgreSQL, turns are serialized in the database, so API replicas queue as one; on a SQLite file by a
    lock file beside it, so the processes of the host that use it do; in memory on a database in memory."""
    scheme, _, rest = database_url.partition("://")
    if scheme.startswith("postgresql"):
        return DatabaseTurns(f"postgresql://{rest}", db.engine)
    if (database := sqlite_file(database_url)) is not None:
        return HostTurns(lock_file_of(database), db.engine)
    return SessionLocks()
