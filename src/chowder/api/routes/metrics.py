"""`/metrics` in Prometheus's text format, for the operator's scraper only: served when `CHOWDER_METRICS_TOKEN` is
set, to a request bearing it (no organization key reads it: the counts span every tenant)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from chowder.api.deps import State
from chowder.core.errors import NotFound, Unauthorized

router = APIRouter(include_in_schema=False)
_bearer = HTTPBearer(auto_error=False)


async def scraper(state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected = state.settings.metrics_token
    if expected is None:
        raise NotFound("Metrics are off on this server: set CHOWDER_METRICS_TOKEN to serve them.")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("Invalid metrics token.")


@router.get("/metrics", dependencies=[Depends(scraper)])
async def metrics(state: State) -> Response:
    await state.census.refresh()
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
