"""A fake Stripe API on a loopback port, for driving the official `stripe` library offline (its API base pointed
here), and webhook payloads signed exactly as Stripe signs them (`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of
"<ts>.<payload>" with the endpoint secret>`).

Answers the endpoints Chowder uses with Stripe's object shapes; requests arrive form-encoded, as the library
sends them (`line_items[0][price]=…`), and are kept in `requests` as (method, path, form). Subscriptions are
made by the test (`subscribe`, as a completed Checkout would) and their item quantities are kept. `down` turns
the server into an outage: every request gets a 500 `api_error`, which the library retries and then raises."""

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
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.down = False
        self.refused = 0
        self._ids = itertools.count(1)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/{path:path}", self._dispatch, methods=["GET", "POST"])])

    def posted(self, path: str) -> list[dict[str, str]]:
        return [form for method, p, form in self.requests if method == "POST" and p == path]

    def subscribe(self, customer: str, price: str, quantity: int) -> str:
        """A subscription with one item, as Checkout leaves it; its id."""
        n = next(self._ids)
        item = {"id": f"si_test{n}", "object": "subscription_item", "price": {"id": price}, "quantity": quantity}
        self.subscriptions[f"sub_test{n}"] = {
            "id": f"sub_test{n}",
            "object": "subscription",
            "customer": customer,
            "status": "active",
            "items": {"object": "list", "data": [item]},
        }
        return f"sub_test{n}"

    def quantity(self, subscription_id: str) -> int:
        return int(self.subscriptions[subscription_id]["items"]["data"][0]["quantity"])

    async def _dispatch(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided.")
        path = "/v1/" + request.path_params["path"]
        form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
        self.requests.append((request.method, path, form))
        if self.down:
            self.refused += 1
            return _error(500, "api_error", "An unknown error occurred.")
        n = next(self._ids)
        if path.startswith("/v1/subscriptions/"):
            subscription_id = path.removeprefix("/v1/subscriptions/")
            found = self.subscriptions.get(subscription_id)
            return JSONResponse(found) if found else _missing("subscription", subscription_id)
        if path.startswith("/v1/subscription_items/") and request.method == "POST":
            return self._update_item(path.removeprefix("/v1/subscription_items/"), form)
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

    def _update_item(self, item_id: str, form: dict[str, str]) -> JSONResponse:
        for subscription in self.subscriptions.values():
            for item in subscription["items"]["data"]:
                if item["id"] == item_id:
                    if subscription["status"] == "canceled":
                        return _error(400, "invalid_request_error", "This subscription has been canceled.")
                    item["quantity"] = int(form.get("quantity", item["quantity"]))
                    return JSONResponse({**item, "subscription": subscription["id"]})
        return _missing("subscription_item", item_id)


def _error(status: int, kind: str, message: str, code: str | None = None) -> JSONResponse:
    error = {"type": kind, "message": message} | ({"code": code} if code else {})
    return JSONResponse({"error": error}, status_code=status)


def _missing(kind: str, ident: str) -> JSONResponse:
    return _error(404, "invalid_request_error", f"No such {kind}: '{ident}'", "resource_missing")


def completed_checkout(org_id: str, customer: str, subscription: str, tier: str) -> dict[str, Any]:
    """The Checkout Session of a `checkout.session.completed` event, as Chowder's checkout creates it."""
    return {
        "id": f"cs_{subscription}",
        "object": "checkout.session",
        "client_reference_id": org_id,
        "customer": customer,
        "subscription": subscription,
        "metadata": {"organization_id": org_id, "tier": tier},
    }


def signed_event(
    event_type: str, obj: dict[str, Any], secret: str, event_id: str, created: int | None = None
) -> tuple[bytes, str]:
    """An event body and the `Stripe-Signature` header Stripe would send with it; `created` (Unix seconds) is when
    Stripe made the event, now unless given (a late delivery of an older event is sent now, signed now)."""
    event = {"id": event_id, "object": "event", "type": event_type, "created": created or int(time.time())}
    payload = json.dumps(event | {"data": {"object": obj}}).encode()
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={digest}"
