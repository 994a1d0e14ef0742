"""Who sent a request, as the middleware sees it before authentication: the bearer token it carries, if any, and
the client's address (the peer, or what the server's proxy settings made of X-Forwarded-For)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Scope

from chowder.core.ids import hash_key


def bearer_token(scope: Scope) -> str | None:
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def caller_of(scope: Scope) -> tuple[str, str]:
    """Whose request it is before authentication: ("key", the bearer token's hash) or ("client", the address). The
    rate limits' bucket and the idempotency keys' scope."""
    token = bearer_token(scope)
    return ("key", hash_key(token)) if token else ("client", client_address(scope))
