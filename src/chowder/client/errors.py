"""What the SDK raises. Every answer of 400 or more becomes one of these, chosen by its status, carrying the
status, the server's `detail` (a string, or the object of a gateway error or a 422's list) and its headers:

ChowderError                    base; also the transport failing (status None)
├── BadRequest              400
├── Unauthorized            401
├── PaymentRequired         402 (instance limit or spend cap reached)
├── Forbidden               403
├── NotFound                404
├── Conflict                409 (the instance's state forbids it; an Idempotency-Key in flight)
├── PayloadTooLarge         413
├── UnsupportedMediaType    415
├── Unprocessable           422
├── RateLimited             429 (`retry_after` seconds)
├── ServerError             5xx
│   ├── GatewayUnavailable  502
│   └── ServiceUnavailable  503
├── InstanceFailed          waiting for `running`, the instance went to `error`
└── WaitTimeout             waiting for `running`, time ran out
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ChowderError(Exception):
    """`status` is the HTTP status (None when no answer came); `detail` is what the server said."""

    def __init__(self, detail: Any, status: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(_message(status, detail))
        self.detail = detail
        self.status = status
        self.headers: Mapping[str, str] = headers or {}


class BadRequest(ChowderError):
    pass


class Unauthorized(ChowderError):
    pass


class PaymentRequired(ChowderError):
    pass


class Forbidden(ChowderError):
    pass


class NotFound(ChowderError):
    pass


class Conflict(ChowderError):
    pass


class PayloadTooLarge(ChowderError):
    pass


class UnsupportedMediaType(ChowderError):
    pass


class Unprocessable(ChowderError):
    pass


class RateLimited(ChowderError):
    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again, from the answer's `Retry-After`."""
        return retry_after(self.headers)


class ServerError(ChowderError):
    pass


class GatewayUnavailable(ServerError):
    pass


class ServiceUnavailable(ServerError):
    pass


class InstanceFailed(ChowderError):
    """The instance went to `error` while being waited for; `detail` is its `error_message`."""


class WaitTimeout(ChowderError):
    """The instance was not `running` in time; `detail` says what it was."""


_BY_STATUS: dict[int, type[ChowderError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: RateLimited,
    502: GatewayUnavailable,
    503: ServiceUnavailable,
}


def error_for(status: int, body: Any, headers: Mapping[str, str]) -> ChowderError:
    """The error an answer of `status` stands for; `body` is its decoded JSON (or text, when it is not JSON)."""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ChowderError)
    return cls(detail, status, headers)


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:  # an HTTP date: the server never sends one, so waiting the default is good enough
        return None


def _message(status: int | None, detail: Any) -> str:
    if isinstance(detail, dict) and "error" in detail:
        detail = detail["error"]
    return str(detail) if status is None else f"{status}: {detail}"
