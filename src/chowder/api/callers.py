"""Who sent a request, as the middleware sees it before authentication: the bearer token it carries, if any, and
the client's address (the peer, or what the server's proxy settings made of X-Forwarded-For)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Scope


def bearer_token(scope: Scope) -> str | None:
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"
