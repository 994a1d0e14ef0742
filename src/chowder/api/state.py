"""The long-lived objects of one app, built in the lifespan and reached through dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from chowder.domain.billing import Billing
from chowder.domain.instances import Instances
from chowder.domain.ports.runtime import AgentRuntime
from chowder.persistence.db import Database
from chowder.proxy.sessions import SessionLocks


@dataclass
class AppState:
    settings: Settings
    db: Database
    box: SecretBox
    instances: Instances
    runtime: AgentRuntime
    http: httpx.AsyncClient
    billing: Billing
    sessions: SessionLocks = field(default_factory=SessionLocks)
