"""The warm pool as storage sees it: gateways booted ahead of demand, each a row until an instance claims it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class WarmState(StrEnum):
    BOOTING = "booting"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class WarmGateway:
    """One pool member: its sandbox (recorded before it is created, so no sweep mistakes it for an orphan), the
    pool it fills (provider, release, slot), and the credentials minted for it at its boot, which become the
    claiming instance's own (no other sandbox ever held them)."""

    sandbox_id: str
    provider: str
    release: str
    slot: int
    state: WarmState
    owner: str
    created_at: datetime
    gateway_token_enc: str = field(repr=False)
    model_token_hash: str = field(repr=False)
    model_token_enc: str = field(repr=False)
    gateway_url: str | None = None


class WarmPoolRepository(Protocol):
    """Spans tenants by design: a pool member belongs to no organization until it is claimed."""

    def members(self, provider: str, release: str) -> list[WarmGateway]: ...

    def add(self, member: WarmGateway) -> bool:
        """False when its slot is taken already (another worker fills it)."""
        ...

    def mark_ready(self, sandbox_id: str, gateway_url: str) -> None: ...

    def remove(self, sandbox_id: str) -> None: ...

    def take(self, provider: str, release: str) -> WarmGateway | None:
        """A ready member, removed from the pool in this transaction (so only one claim gets it), or None."""
        ...

    def by_model_token(self, token_hash: str) -> WarmGateway | None: ...

    def sandbox_ids(self, provider: str) -> set[str]: ...
