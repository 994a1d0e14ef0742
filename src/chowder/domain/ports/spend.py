"""Spend caps as storage keeps them: a monthly token limit on an organization and on each scoped key, and each
one's running total per calendar month (UTC), added to as usage is recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Cap:
    """A limit (None: no cap) and the tokens used against it in one month."""

    limit: int | None
    used: int


@dataclass(frozen=True, slots=True)
class Caps:
    """An organization's cap and, when the call or turn is a scoped key's, that key's (None otherwise)."""

    organization: Cap
    key: Cap | None


class SpendReads(Protocol):
    def caps(self, org_id: str, key_id: str | None, month: str) -> Caps:
        """The org's cap and the month's use; `key` is None unless `key_id` names a scoped key of the org."""
        ...


class SpendRepository(SpendReads, Protocol):
    def charge(self, org_id: str, key_id: str | None, month: str, tokens: int) -> None:
        """Adds `tokens` to the month's total of the org and, when given, of the scoped key."""
        ...

    def key_caps(self, org_id: str, key_ids: list[str], month: str) -> dict[str, Cap]:
        """The caps of those of the org's scoped keys named."""
        ...

    def capped_keys(self, org_id: str, month: str) -> dict[str, Cap]:
        """The caps of every scoped key of the org that has a limit."""
        ...

    def set_org_limit(self, org_id: str, limit: int | None) -> None: ...

    def set_key_limit(self, org_id: str, key_id: str, limit: int | None) -> None: ...
