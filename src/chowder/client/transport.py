"""What the sync and async clients share about sending: the headers every call carries, when a failed call is
sent again and after how long, and how an error answer becomes an exception."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from chowder import __version__
from chowder.client.calls import Call
from chowder.client.errors import ChowderError, error_for, retry_after

DEFAULT_TIMEOUT_S = 30.0
_RETRIED_STATUSES = frozenset({502, 503})


@dataclass(frozen=True, slots=True)
class Retries:
    """Exponential backoff (`backoff_s`, doubled each time, at most `max_delay_s`, at least the server's
    Retry-After) for calls safe to repeat (`Call.retryable`) that met a 502, a 503 or a lost connection."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, call: Call[Any], attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before trying `call` again after its `attempt`-th failure (from 0); None: give up."""
        if not call.retryable or attempt >= self.attempts:
            return None
        if response is not None and response.status_code not in _RETRIED_STATUSES:
            return None
        wait: float = self.backoff_s * 2.0**attempt
        if response is not None:
            wait = max(wait, retry_after(response.headers) or 0.0)
        return min(wait, self.max_delay_s)

    def wait_or_raise(
        self, call: Call[Any], attempt: int, url: httpx.URL, outcome: httpx.Response | httpx.TransportError
    ) -> float:
        """After a failed attempt (an error answer, already read, or no answer): seconds to wait before the next
        one, or the `ChowderError` that ends the call, raised."""
        answer = outcome if isinstance(outcome, httpx.Response) else None
        delay = self.delay(call, attempt, answer)
        if delay is not None:
            return delay
        if answer is not None:
            raise failure(answer)
        assert isinstance(outcome, httpx.TransportError)
        raise unreachable(outcome, url) from outcome


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"chowder-python/{__version__}", "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def base(url: str) -> str:
    """The server's root: a `/v1` the user may have copied along is dropped (the routes carry it)."""
    return url.rstrip("/").removesuffix("/v1")


def failure(response: httpx.Response) -> ChowderError:
    """The exception an error answer (already read) stands for."""
    try:
        decoded: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        decoded = response.text
    return error_for(response.status_code, decoded, response.headers)


def unreachable(exc: httpx.TransportError, url: httpx.URL) -> ChowderError:
    return ChowderError(f"Could not reach {url.scheme}://{url.netloc.decode()}: {exc or type(exc).__name__}")
