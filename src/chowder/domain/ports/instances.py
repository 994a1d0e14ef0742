"""Instance records and their repositories: the tenant's view (always by organization id) and the engine's
(across tenants, guarded by leases)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from chowder.domain.models import Desired, Status
from chowder.sandbox.base import Egress


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """An instance with its public fields, its desired state and the engine's bookkeeping. Secrets stay
    encrypted (`*_enc`) until a use case needs them."""

    id: str
    organization_id: str
    name: str
    status: Status
    desired_state: Desired
    model_provider: str
    sandbox_provider: str
    sandbox_id: str | None
    gateway_url: str | None
    openclaw_version: str
    openclaw_release: str
    openclaw_config: dict[str, Any] | None
    region: str | None
    egress: Egress
    error_message: str | None
    gateway_token_enc: str = field(repr=False)
    model_token_hash: str = field(repr=False)
    model_token_enc: str = field(repr=False)
    status_changed_at: datetime
    observed_at: datetime | None
    torn_down: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class InstanceRepository(Protocol):
    """Reads and writes of one tenant's instances; a deleted (terminated) instance is not visible."""

    def add(self, instance: InstanceRecord) -> None: ...

    def get(self, org_id: str, instance_id: str) -> InstanceRecord | None:
        """A visible instance: of this org and not deleted."""
        ...

    def of_org(self, org_id: str) -> list[InstanceRecord]:
        """The org's visible instances, newest first."""
        ...

    def count_live(self, org_id: str) -> int:
        """What the tier limit and the Stripe quantity count: the org's instances not deleted."""
        ...

    def by_model_token(self, token_hash: str) -> InstanceRecord | None:
        """Cross-tenant by design: the model endpoint learns the org from the instance's credential."""
        ...


class EngineRepository(Protocol):
    """The lifecycle engine's queries: across tenants, guarded by leases instead of org ids."""

    def needing_work(self, now: datetime, observe_before: datetime) -> list[str]: ...

    def claim(self, instance_id: str, owner: str, now: datetime, lease: timedelta) -> bool: ...

    def release(self, instance_id: str, owner: str) -> None: ...

    def leased(self, instance_id: str, owner: str) -> InstanceRecord | None:
        """The instance, if `owner` holds its lease."""
        ...

    def state_of(self, instance_id: str) -> tuple[Status, Desired] | None: ...

    def not_torn_down(self, provider: str) -> set[str]: ...
