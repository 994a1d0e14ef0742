"""Domain errors. Services raise these; `api.errors` maps each class to one HTTP status.

ChowderError
├── BadRequest            400
├── Unauthorized          401
├── QuotaExceeded         402
├── Forbidden             403
├── NotFound              404
├── InvalidState          409
├── PayloadTooLarge       413
├── UnsupportedMediaType  415
├── Unprocessable         422
├── RateLimited           429
├── GatewayUnavailable    502
├── ServiceUnavailable    503
├── GatewayTimeout        504
└── ProviderError         502 (sandbox/runtime failures; also an instance's error_message)
    └── FileTooLarge      a tenant file over the bound its reader set
"""

from __future__ import annotations

from typing import Any


class ChowderError(Exception):
    """Base of every error we raise on purpose; `detail` is what the client reads."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ChowderError):
    pass


class Unauthorized(ChowderError):
    pass


class QuotaExceeded(ChowderError):
    pass


class Forbidden(ChowderError):
    pass


class NotFound(ChowderError):
    pass


class InvalidState(ChowderError):
    pass


class PayloadTooLarge(ChowderError):
    pass


class UnsupportedMediaType(ChowderError):
    pass


class Unprocessable(ChowderError):
    pass


class RateLimited(ChowderError):
    """`headers`: the X-RateLimit ones and Retry-After."""

    def __init__(self, detail: str, headers: list[tuple[str, str]]) -> None:
        super().__init__(detail)
        self.headers = headers


class GatewayUnavailable(ChowderError):
    pass


# The documented body of every "cannot reach the gateway" answer (the dash is an en dash).
GATEWAY_UNAVAILABLE = {
    "error": "Gateway unavailable – the sandbox may have been stopped or deleted. Try restarting the instance."
}


class GatewayTimeout(ChowderError):
    pass


class ServiceUnavailable(ChowderError):
    pass


class ProviderError(ChowderError):
    """A sandbox or runtime operation failed; the text is safe to show the instance's owner."""


class FileTooLarge(ProviderError):
    """A sandbox file is larger than its reader is willing to hold in memory (the tenant sets its size)."""
