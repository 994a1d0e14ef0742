"""Who is acting, for the audit log: the API key of the request being served (set by authentication) and the
request's id (`api/request_ids.py`). The engine's own tasks start outside any request, so there both are None:
the engine is the actor."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    key_id: str | None = None
    key_prefix: str | None = None
    request_id: str | None = None


_current: ContextVar[Actor | None] = ContextVar("chowder_actor", default=None)


def current_actor() -> Actor:
    return _current.get() or Actor()


def act_as(actor: Actor) -> None:
    """From here on in this request (its context), `actor` is acting."""
    _current.set(actor)
