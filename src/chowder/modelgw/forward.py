"""The model gateway: sandboxes call models only through here. It checks the per-instance credential,
swaps in the organization's real provider key (and has a streamed Chat Completions call report its usage) and
streams the provider's answer back untouched.

Real keys never enter a sandbox; rotating one (PATCH /v1/organization) applies to the next call. With the
dev model on, `echo_answer` answers instead of a provider (no key involved). Either way the answer passes
through `_metered`, the one place usage is read off it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from chowder.core.model_providers import ProviderProtocol, ProviderSpec
from chowder.modelgw import echo
from chowder.modelgw.usage import UsageMeter, usage_requested
from chowder.proxy.headers import request_headers, response_headers

OnUsage = Callable[[UsageMeter], Awaitable[None]]


def presented_credential(request: Request) -> str | None:
    """The gateway sends its credential the way its provider protocol does: x-api-key or a bearer token."""
    if key := request.headers.get("x-api-key"):
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def provider_error(protocol: ProviderProtocol, status: int, message: str) -> JSONResponse:
    """An error in the protocol's own shape, so the gateway reports it as the provider's failure."""
    if protocol is ProviderProtocol.ANTHROPIC_MESSAGES:
        body: dict[str, object] = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": "chowder_model_gateway"}}
    return JSONResponse(body, status_code=status)


async def forward(
    http: httpx.AsyncClient,
    provider: ProviderSpec,
    base_url: str,
    api_key: str,
    tail: str,
    request: Request,
    timeout_s: float,
    on_usage: OnUsage,
) -> Response:
    """Send the request on with the real key and stream the answer back as it arrives; once it has been
    sent, `on_usage` gets the tokens the provider reported (successful answers only)."""
    headers = request_headers(request.headers)
    headers[provider.key_header] = provider.key_prefix + api_key
    outgoing = http.build_request(
        request.method,
        base_url.rstrip("/") + "/" + tail.lstrip("/"),
        params=request.query_params,
        headers=headers,
        content=usage_requested(tail, await request.body()),
        timeout=httpx.Timeout(timeout_s, connect=10.0),
    )
    try:
        answer = await http.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"The model provider could not be reached: {type(exc).__name__}") from exc
    return StreamingResponse(
        _metered(answer.aiter_bytes(), on_usage if answer.status_code < 400 else None),
        status_code=answer.status_code,
        headers=response_headers(answer.headers),
        background=BackgroundTask(answer.aclose),
    )


async def echo_answer(
    provider: ProviderSpec, tail: str, request: Request, user_words: echo.UserWords, on_usage: OnUsage
) -> Response:
    """The built-in echo model's answer to a model call, in the protocol its path names, streamed if the
    request asks; `on_usage` gets its tokens exactly as for a provider's answer."""
    protocol = echo.protocol_for("/" + tail.lstrip("/"))
    if request.method != "POST" or protocol is None:
        message = f"The dev model does not serve {request.method} /{tail.lstrip('/')}."
        return provider_error(provider.protocol, 404, message)
    body = echo.parse_body(await request.body())
    if body is None:
        return provider_error(provider.protocol, 400, "The request body is not a JSON object.")
    result = echo.answer(protocol, body, user_words)
    if echo.wants_stream(body):
        chunks: Iterable[bytes] = echo.sse_answer(protocol, body, result)
        media_type, headers = "text/event-stream", {"cache-control": "no-cache"}
    else:
        chunks = [json.dumps(echo.json_answer(protocol, result), separators=(",", ":")).encode()]
        media_type, headers = "application/json", {}
    return StreamingResponse(_metered(_aiter(chunks), on_usage), media_type=media_type, headers=headers)


# Each metered answer's upstream reader, held here until it is done (the caller may have left before).
_READERS: set[asyncio.Task[None]] = set()


async def _metered(chunks: AsyncIterator[bytes], on_usage: OnUsage | None) -> AsyncIterator[bytes]:
    """Pass an answer through as it arrives, reading usage off it; before its end reaches the caller,
    `on_usage` gets the tokens, unless it is None (a failed answer). The answer is read in a task of its own, so a
    caller that leaves early (OpenClaw may close a stream at its last choice, before the usage chunk) stops
    neither the reading nor the metering: the provider bills the whole answer, and leaving early must not dodge
    the meter."""
    if on_usage is None:
        async for chunk in chunks:
            yield chunk
        return
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    reader = asyncio.get_running_loop().create_task(_read(chunks, queue, on_usage))
    _READERS.add(reader)
    reader.add_done_callback(_forget)
    while (arrived := await queue.get()) is not None:
        yield arrived
    await reader  # an answer the provider broke off breaks the caller's too


async def _read(chunks: AsyncIterator[bytes], queue: asyncio.Queue[bytes | None], on_usage: OnUsage) -> None:
    meter = UsageMeter()
    try:
        async for chunk in chunks:
            meter.feed(chunk)
            queue.put_nowait(chunk)
    finally:
        meter.finish()
        try:
            await on_usage(meter)
        finally:
            queue.put_nowait(None)


def _forget(reader: asyncio.Task[None]) -> None:
    _READERS.discard(reader)
    if not reader.cancelled():
        reader.exception()  # retrieved: the caller, if still there, got it


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class UpstreamUnavailable(Exception):
    pass
