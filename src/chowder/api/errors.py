"""The one table from domain errors to HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chowder.core import errors

STATUS_BY_ERROR: dict[type[errors.ChowderError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.QuotaExceeded: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.InvalidState: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.Unprocessable: 422,
    errors.RateLimited: 429,
    errors.GatewayUnavailable: 502,
    errors.ProviderError: 502,
    errors.ServiceUnavailable: 503,
    errors.GatewayTimeout: 504,
}


def install_error_handlers(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.ChowderError)
        status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, errors.RateLimited):
            headers = dict(exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=status, headers=headers)

    app.add_exception_handler(errors.ChowderError, handle)
