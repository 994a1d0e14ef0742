"""A model call as the model gateway carries it: the domain decides who may make it and what it is charged,
the adapter speaks the provider's protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

Answer_co = TypeVar("Answer_co", covariant=True)


class TokenCounts(Protocol):
    """What the answer's meter read off it once the answer has been sent."""

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


RecordUsage = Callable[[TokenCounts], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CallSubject:
    """What a call's usage is attributed to, read off its request: the model asked for and the session (when
    the gateway marked it)."""

    model: str
    session_id: str | None


class ModelExchange(Protocol[Answer_co]):
    """One model call, read only once it is authenticated: its request, and the answer of the provider (with the
    organization's key) or of the built-in dev model (no key)."""

    async def subject(self) -> CallSubject: ...

    async def answer(self, api_key: str | None, on_usage: RecordUsage) -> Answer_co: ...
