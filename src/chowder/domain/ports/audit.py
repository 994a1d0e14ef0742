"""The audit log as storage sees it: append-only entries, each an organization's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chowder.core.pagination import PageRequest


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One state-changing call (`action` its method and route, `outcome` and `status_code` its answer) or one
    lifecycle transition (`instance.<event>`, `detail` its statuses); the actor is an API key, or the engine when
    `actor_key_id` is None."""

    id: str
    organization_id: str
    created_at: datetime
    action: str
    outcome: str
    actor_key_id: str | None = None
    actor_key_prefix: str | None = None
    request_id: str | None = None
    instance_id: str | None = None
    target_id: str | None = None
    status_code: int | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    instance_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository(Protocol):
    def add(self, entry: AuditEntry) -> None: ...

    def of_org(self, org_id: str, where: AuditFilter, page: PageRequest) -> list[AuditEntry]:
        """Newest first: the page's entries, and one more if there is a next page."""
        ...
