"""Rate limits (extension), as pure ASGI middleware, outermost: a request over its caller's quota is refused
with 429 before anything else reads it. Every answer carries `X-RateLimit-Limit`, `-Remaining` and `-Reset` (Unix
seconds when the bucket is full again) of the bucket that binds it, the one with least left: the caller's (its
API key's, or its address's without one), or its organization's once authentication has charged that
(`api/deps.py`). A refusal adds `Retry-After`. Signups are charged per client address besides."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chowder.api.asgi import app_state
from chowder.api.callers import caller_of, client_address
from chowder.core.rate_limits import ApiRateLimits, Verdict

SIGNUP_PATH = "/v1/organization/signup"
# Where authentication leaves the organization's verdict (`request.state`, which lives in the scope).
ORG_VERDICT = "chowder_org_rate"


class RateLimits:
    def __init__(self, app: ASGIApp, limits: ApiRateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        (kind, who), address = caller_of(scope), client_address(scope)
        charged = (
            self.limits.caller(kind, who),
            self.limits.signup(address) if scope["method"] == "POST" and scope["path"] == SIGNUP_PATH else None,
        )
        verdicts = [verdict for verdict in charged if verdict is not None]
        refused = next((verdict for verdict in verdicts if not verdict.allowed), None)
        if refused is not None:
            if (chowder := app_state(scope)) is not None:
                chowder.metrics.rate_limited.labels("signup" if refused is charged[1] else "key").inc()
            whose = "signups from this address per hour" if refused is charged[1] else _per_minute(kind)
            detail = f"Rate limit exceeded: {refused.limit} {whose}. Retry after {refused.retry_after_s} s."
            await JSONResponse({"detail": detail}, 429, dict(refused.headers()))(scope, receive, send)
            return
        request_state = scope.setdefault("state", {})

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                org = request_state.get(ORG_VERDICT)
                binding = min([*verdicts, *([org] if org else [])], key=_left, default=None)
                if binding is not None and "x-ratelimit-limit" not in headers:
                    for name, value in binding.headers():
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _left(verdict: Verdict) -> tuple[int, int]:
    return verdict.remaining, -verdict.reset


def _per_minute(kind: str) -> str:
    return "requests per minute for this API key" if kind == "key" else "requests per minute from this address"
