"""A fake Stripe API on a loopback port, for driving the official `stripe` library offline (its API base pointed
here), and webhook payloads signed exactly as Stripe signs them (`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of
"<ts>.<payload>" with the endpoint secret>`).

Answers the endpoints Chowder uses with Stripe's object shapes; requests arrive form-encoded, as the library
sends them (`line_items[0][price]=…`), and are kept in `requests` as (method, path, form)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer


class FakeStripeApi(LoopbackServer):
    thread_name = "fake-stripe"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._ids = itertools.count(1)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/{path:path}", self._dispatch, methods=["GET", "POST"])])

    def posted(self, path: str) -> list[dict[str, str]]:
        return [form for method, p, form in self.requests if method == "POST" and p == path]

    async def _dispatch(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided.")
        path = "/v1/" + request.path_params["path"]
        form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
        self.requests.append((request.method, path, form))
        n = next(self._ids)
        if path == "/v1/customers":
            return JSONResponse({"id": f"cus_test{n}", "object": "customer", "name": form.get("name")})
        if path == "/v1/checkout/sessions":
            return JSONResponse(
                {
                    "id": f"cs_test_{n}",
                    "object": "checkout.session",
                    "mode": form.get("mode"),
                    "customer": form.get("customer"),
                    "url": f"https://checkout.stripe.com/c/pay/cs_test_{n}",
                }
            )
        if path == "/v1/billing_portal/sessions":
            return JSONResponse(
                {
                    "id": f"bps_{n}",
                    "object": "billing_portal.session",
                    "customer": form.get("customer"),
                    "url": f"https://billing.stripe.com/p/session/test_{n}",
                }
            )
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {path}).")


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def signed_event(event_type: str, obj: dict[str, Any], secret: str, event_id: str) -> tuple[bytes, str]:
    """An event body and the `Stripe-Signature` header Stripe would send with it."""
    payload = json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "created": int(time.time()), "data": {"object": obj}}
    ).encode()
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={digest}"
