"""Header hygiene for everything we forward: no hop-by-hop headers, no credentials of the wrong party."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
CREDENTIALS = frozenset({"authorization", "x-api-key", "cookie", "x-goog-api-key"})
# We decode upstream bodies (httpx aiter_bytes), so their encoding must not be claimed again.
DECODED = frozenset({"content-encoding", "content-length"})


def request_headers(incoming: Mapping[str, str], drop: Iterable[str] = ()) -> dict[str, str]:
    """Headers worth passing upstream: the client's own, minus transport, credentials and `drop`."""
    dropped = HOP_BY_HOP | CREDENTIALS | {"accept-encoding"} | {name.lower() for name in drop}
    return {name: value for name, value in incoming.items() if name.lower() not in dropped}


def response_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in upstream.items() if name.lower() not in HOP_BY_HOP | DECODED}
