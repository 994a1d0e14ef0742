"""The model gateway: sandboxes call models only through here. It checks the per-instance credential,
swaps in the organization's real provider key and streams the provider's answer back untouched.

Real keys never enter a sandbox; rotating one (PATCH /v1/organization) applies to the next call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from chowder.core.settings import Settings
from chowder.modelgw.usage import UsageMeter
from chowder.proxy.headers import request_headers, response_headers


@dataclass(frozen=True, slots=True)
class Upstream:
    base_url: str
    auth_header: str
    auth_prefix: str


def upstreams(settings: Settings) -> dict[str, Upstream]:
    return {
        "anthropic": Upstream(settings.anthropic_base_url, "x-api-key", ""),
        "openai": Upstream(settings.openai_base_url, "authorization", "Bearer "),
        "gemini": Upstream(settings.gemini_base_url, "authorization", "Bearer "),
    }


def presented_credential(request: Request) -> str | None:
    """The gateway sends its credential the way its provider protocol does: x-api-key or a bearer token."""
    if key := request.headers.get("x-api-key"):
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def provider_error(provider: str, status: int, message: str) -> JSONResponse:
    """An error in the protocol's own shape, so the gateway reports it as the provider's failure."""
    if provider == "anthropic":
        body: dict[str, object] = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": "chowder_model_gateway"}}
    return JSONResponse(body, status_code=status)


async def forward(
    http: httpx.AsyncClient,
    upstream: Upstream,
    api_key: str,
    tail: str,
    request: Request,
    timeout_s: float,
    on_usage: Callable[[UsageMeter], Awaitable[None]],
) -> Response:
    """Send the request on with the real key and stream the answer back as it arrives; once it has been
    sent, `on_usage` gets the tokens the provider reported."""
    headers = request_headers(request.headers)
    headers[upstream.auth_header] = upstream.auth_prefix + api_key
    outgoing = http.build_request(
        request.method,
        upstream.base_url.rstrip("/") + "/" + tail.lstrip("/"),
        params=request.query_params,
        headers=headers,
        content=await request.body(),
        timeout=httpx.Timeout(timeout_s, connect=10.0),
    )
    meter = UsageMeter()
    try:
        answer = await http.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"The model provider could not be reached: {type(exc).__name__}") from exc

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.aiter_bytes():
                meter.feed(chunk)
                yield chunk
        finally:
            meter.finish()
            if answer.status_code < 400:
                await on_usage(meter)

    return StreamingResponse(
        body(),
        status_code=answer.status_code,
        headers=response_headers(answer.headers),
        background=BackgroundTask(answer.aclose),
    )


class UpstreamUnavailable(Exception):
    pass
