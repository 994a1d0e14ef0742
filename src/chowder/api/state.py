"""The long-lived objects of one app, built in the lifespan and reached through dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from chowder.core.metrics import Metrics
from chowder.core.rate_limits import ApiRateLimits
from chowder.core.settings import Settings
from chowder.domain.audit import AuditLog
from chowder.domain.backups import Backups
from chowder.domain.billing import Billing
from chowder.domain.census import FleetCensus
from chowder.domain.chat import ChatTurns
from chowder.domain.idempotency import IdempotencyKeys
from chowder.domain.instances import Instances
from chowder.domain.keys import ApiKeys
from chowder.domain.model_calls import ModelCalls
from chowder.domain.orgs import Organizations
from chowder.domain.ports.runtime import AgentRuntime
from chowder.domain.ports.turns import SessionTurns
from chowder.domain.power import PowerControl
from chowder.domain.restores import Restores
from chowder.domain.sessions import SessionTranscripts
from chowder.domain.turns import SessionLocks
from chowder.domain.upgrades import Upgrades
from chowder.domain.usage import UsageReports
from chowder.domain.webhooks import Webhooks


@dataclass
class AppState:
    settings: Settings
    instances: Instances
    runtime: AgentRuntime
    http: httpx.AsyncClient
    billing: Billing
    orgs: Organizations
    keys: ApiKeys
    usage: UsageReports
    chat: ChatTurns
    model_calls: ModelCalls
    power: PowerControl
    idempotency: IdempotencyKeys
    rate_limits: ApiRateLimits
    audit: AuditLog
    metrics: Metrics
    census: FleetCensus
    webhooks: Webhooks
    restores: Restores
    upgrades: Upgrades
    transcripts: SessionTranscripts
    backups: Backups
    sessions: SessionTurns = field(default_factory=SessionLocks)
