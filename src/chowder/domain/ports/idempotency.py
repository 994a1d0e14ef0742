"""Idempotency keys as storage sees them: one record per caller and key, holding the request's fingerprint and,
once it has run, the answer to replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """What a key was first used for; `answer` is None while that request is still running."""

    fingerprint: str
    answer: StoredAnswer | None


class IdempotencyRepository(Protocol):
    """Spans tenants by design: `caller` is a hash of the API key (or the client address where there is none)."""

    def claim(
        self, caller: str, key: str, fingerprint: str, lease_until: datetime, expired_before: datetime, now: datetime
    ) -> KeyedRequest | None:
        """None when the caller now holds the key (new, expired, or abandoned by a request whose lease ran out:
        its process died); else the record it found."""
        ...

    def extend(self, caller: str, key: str, lease_until: datetime) -> None: ...

    def answer(self, caller: str, key: str, answer: StoredAnswer) -> None: ...

    def release(self, caller: str, key: str) -> None: ...
