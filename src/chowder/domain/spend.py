"""Spend caps: a token budget per calendar month (UTC) on the organization and on each scoped key.

Every metered model call is charged, input plus output tokens, to the month's running total of its organization
and, when a scoped key's chat turn caused it, of that key (a turn of the org key, or a call of no turn such as a
channel message, counts against the organization only). A cap is checked before a chat turn starts (the Responses
API answers 402) and before every model call (the model gateway refuses it, and the agent's turn fails): a call
that starts under the cap is answered in full, so a turn may cross it; the next call is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chowder.core.clock import utcnow
from chowder.core.errors import QuotaExceeded
from chowder.domain.audit import audit_entry
from chowder.domain.ports.spend import Cap, Caps, SpendReads
from chowder.domain.ports.storage import UnitOfWork

Whose = Literal["key", "organization"]
NO_CAP = Cap(None, 0)
_NAMED: dict[Whose, str] = {"key": "this API key", "organization": "the organization"}


class CapReached(QuotaExceeded):
    """A month's total has reached its cap; `detail` names the cap for the API's 402."""

    def __init__(self, whose: Whose, limit: int) -> None:
        super().__init__(f"Monthly token limit of {_NAMED[whose]} reached ({limit:,} tokens).")
        self.whose = whose

    @property
    def model_call_message(self) -> str:
        """The model gateway's refusal, which the agent's failed turn reports. No figure in it: OpenClaw reads a
        provider's error text to decide whether to retry or to bench its credential, and a figure such as 401 or
        429 would read as an authentication failure or a rate limit (see `api/routes/model_gateway.py`)."""
        return f"Monthly token limit of {_NAMED[self.whose]} reached: Chowder refused this model call."


def month_of(at: datetime) -> str:
    """The calendar month (UTC) a charge at `at` counts in, as `2026-12`."""
    return f"{at.year:04d}-{at.month:02d}"


def admit(reads: SpendReads, org_id: str, key_id: str | None, now: datetime) -> str | None:
    """The scoped key to charge beside the org (None for an org key or no key). Raises CapReached when the key's
    or the org's month total has reached its cap (the key's named when both have)."""
    caps = reads.caps(org_id, key_id, month_of(now))
    checks: tuple[tuple[Whose, Cap | None], ...] = (("key", caps.key), ("organization", caps.organization))
    for whose, cap in checks:
        if cap is not None and cap.limit is not None and cap.used >= cap.limit:
            raise CapReached(whose, cap.limit)
    return key_id if caps.key is not None else None


def charge(uow: UnitOfWork, org_id: str, key_id: str | None, tokens: int, at: datetime) -> None:
    """Adds a call's tokens to the month's totals of the org and of the scoped key `admit` named."""
    uow.spend.charge(org_id, key_id, month_of(at), tokens)


def caps_now(uow: UnitOfWork, org_id: str, key_id: str | None = None) -> Caps:
    return uow.spend.caps(org_id, key_id, month_of(utcnow()))


@dataclass(frozen=True, slots=True)
class MonthReport:
    """This month's use against the caps: the org's and each capped scoped key's, by key id."""

    month: str
    organization: Cap
    keys: dict[str, Cap]


def month_report(uow: UnitOfWork, org_id: str) -> MonthReport:
    month = month_of(utcnow())
    organization = uow.spend.caps(org_id, None, month).organization
    return MonthReport(month, organization, dict(sorted(uow.spend.capped_keys(org_id, month).items())))


def set_limit(uow: UnitOfWork, org_id: str, key_id: str | None, limit: int | None) -> None:
    """Sets the org's cap (`key_id` None) or a scoped key's (which the caller has found in the org); a change is
    an audit entry naming the limit before and after."""
    caps = caps_now(uow, org_id, key_id)
    before = caps.organization if key_id is None else caps.key
    if before is None or before.limit == limit:
        return
    if key_id is None:
        uow.spend.set_org_limit(org_id, limit)
    else:
        uow.spend.set_key_limit(org_id, key_id, limit)
    action = "organization.monthly_token_limit" if key_id is None else "key.monthly_token_limit"
    detail = {"previous": before.limit, "monthly_token_limit": limit}
    uow.audit.add(audit_entry(org_id, action, target_id=key_id or org_id, detail=detail))
