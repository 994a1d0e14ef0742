"""Subscriptions: the real `stripe` library against a fake Stripe API, and webhooks signed as Stripe signs them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.api.app import create_app
from chowder.core.settings import Settings
from chowder.domain import orgs
from chowder.domain.models import Tier
from chowder.persistence.db import Database
from chowder.persistence.store import SqlTransactions
from tests.conftest import SHARED_RUNTIME
from tests.factories import auth, create_instance, signup, wait_until
from tests.fakes.stripe_api import FakeStripeApi, completed_checkout, signed_event

pytestmark = pytest.mark.persistence

API_KEY = "sk_test_chowder"
WEBHOOK_SECRET = "whsec_chowder_test"
PRICES = {"crab": "price_crab", "lobster": "price_lobster"}


@pytest.fixture
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(API_KEY) as fake:
        yield fake


@pytest.fixture
def billing_client(data_dir: Path, database_url: str, stripe_api: FakeStripeApi) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        runtime_dir=SHARED_RUNTIME,
        stripe_secret_key=API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_price_crab=PRICES["crab"],
        stripe_price_lobster=PRICES["lobster"],
        stripe_api_base=stripe_api.url,
        reconcile_interval_s=0.1,
        stripe_sync_retry_s=0.3,
    )
    with TestClient(create_app(settings, run_engine=False, serve_sandboxes=False)) as client:
        yield client


def deliver(
    client: TestClient,
    event_type: str,
    obj: dict[str, Any],
    event_id: str,
    secret: str = WEBHOOK_SECRET,
    created: int | None = None,
) -> int:
    payload, signature = signed_event(event_type, obj, secret, event_id, created)
    headers = {"Stripe-Signature": signature, "content-type": "application/json"}
    return client.post("/v1/webhooks/stripe", content=payload, headers=headers).status_code


def subscription(client: TestClient, key: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/v1/subscription", headers=auth(key)).json()
    return body


def test_checkout_portal_and_the_webhook_lifecycle(billing_client: TestClient, stripe_api: FakeStripeApi) -> None:
    client = billing_client
    key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    assert client.post("/v1/subscription/checkout", headers=auth(key), json={"tier": "whale"}).status_code == 400
    no_customer = client.post("/v1/subscription/portal", headers=auth(key))
    assert no_customer.status_code == 409

    checkout = client.post("/v1/subscription/checkout", headers=auth(key), json={"tier": "lobster"})
    assert checkout.status_code == 200, checkout.text
    assert checkout.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [customer_request] = stripe_api.posted("/v1/customers")
    assert customer_request["metadata[organization_id]"] == org_id
    [session_request] = stripe_api.posted("/v1/checkout/sessions")
    assert session_request["mode"] == "subscription" and session_request["client_reference_id"] == org_id
    assert session_request["line_items[0][price]"] == "price_lobster"
    assert session_request["line_items[0][quantity]"] == "1"
    customer = session_request["customer"]
    assert subscription(client, key)["tier"] == "shrimp", "paid only when Stripe says so"
    client.post("/v1/subscription/checkout", headers=auth(key), json={"tier": "crab"})
    assert len(stripe_api.posted("/v1/customers")) == 1, "one Stripe customer per org"

    sub = stripe_api.subscribe(customer, PRICES["lobster"], quantity=1)
    completed = completed_checkout(org_id, customer, sub, "lobster")
    assert deliver(client, "checkout.session.completed", completed, "evt_1") == 200
    assert subscription(client, key) == {
        "tier": "lobster",
        "instance_limit": 500,
        "instance_count": 0,
        "stripe_customer_id": customer,
        "stripe_subscription_id": sub,
    }
    again = client.post("/v1/subscription/checkout", headers=auth(key), json={"tier": "crab"})
    assert again.status_code == 409 and "portal" in again.json()["detail"], "no second subscription"
    portal = client.post("/v1/subscription/portal", headers=auth(key))
    assert portal.status_code == 200 and portal.json()["url"].startswith("https://billing.stripe.com/p/session/")
    assert stripe_api.posted("/v1/billing_portal/sessions")[0]["customer"] == customer

    updated = {"id": sub, "object": "subscription", "customer": customer, "status": "active"}
    updated["items"] = {"data": [{"price": {"id": "price_crab"}, "quantity": 1}]}
    assert deliver(client, "customer.subscription.updated", updated, "evt_2") == 200
    assert subscription(client, key)["tier"] == "crab"
    assert deliver(client, "checkout.session.completed", completed, "evt_1") == 200, "duplicates are acknowledged"
    assert subscription(client, key)["tier"] == "crab", "and not applied again"

    for i in range(2):
        create_instance(client, key, name=f"i{i}")
    assert deliver(client, "customer.subscription.deleted", {**updated, "status": "canceled"}, "evt_3") == 200
    after = subscription(client, key)
    assert (after["tier"], after["instance_limit"], after["instance_count"]) == ("shrimp", 1, 2)
    assert after["stripe_subscription_id"] is None and after["stripe_customer_id"] == customer
    refused = client.post("/v1/instances", headers=auth(key), json={"name": "third"})
    assert refused.status_code == 402, "instances are kept, but none beyond the free limit"
    assert deliver(client, "invoice.paid", {"id": "in_1", "customer": customer}, "evt_4") == 200


def subscribe(client: TestClient, stripe_api: FakeStripeApi, key: str, tier: str) -> str:
    """Checkout for `tier`, completed: the org's subscription id (one item, quantity 1, as Checkout sells it)."""
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    assert client.post("/v1/subscription/checkout", headers=auth(key), json={"tier": tier}).status_code == 200
    customer = stripe_api.posted("/v1/checkout/sessions")[-1]["customer"]
    sub = stripe_api.subscribe(customer, PRICES[tier], quantity=1)
    completed = completed_checkout(org_id, customer, sub, tier)
    assert deliver(client, "checkout.session.completed", completed, f"evt_checkout_{org_id}") == 200
    return sub


def test_quantity_sync_follows_creates_and_deletes_through_a_stripe_outage(
    billing_client: TestClient, stripe_api: FakeStripeApi
) -> None:
    client = billing_client
    key = signup(client)
    sub = subscribe(client, stripe_api, key, "crab")
    wait_until(lambda: stripe_api.quantity(sub) == 0, "the subscription carries the org's 0 instances")
    first = create_instance(client, key, name="first")
    wait_until(lambda: stripe_api.quantity(sub) == 1, "a create raises the quantity")

    stripe_api.down = True
    started = time.monotonic()
    for name in ("second", "third"):
        create_instance(client, key, name=name)
    assert client.delete(f"/v1/instances/{first['id']}", headers=auth(key)).status_code == 204
    assert time.monotonic() - started < 3, "instance calls never wait for Stripe"
    wait_until(lambda: stripe_api.refused >= 6, "two passes failed against the outage (3 attempts each)")
    assert stripe_api.quantity(sub) == 1
    assert subscription(client, key)["instance_count"] == 2, "nothing rolled back"

    stripe_api.down = False
    wait_until(lambda: stripe_api.quantity(sub) == 2, "the sync recovers with Stripe")
    settled = len(stripe_api.requests)
    time.sleep(1)
    assert len(stripe_api.requests) == settled, "once Stripe holds the count, the sync stops calling it"
    [update] = [form for method, path, form in stripe_api.requests[-2:] if method == "POST"]
    assert update == {"quantity": "2"}


def test_quantity_sync_leaves_free_and_whale_orgs_alone(
    billing_client: TestClient, stripe_api: FakeStripeApi, database_url: str
) -> None:
    client = billing_client
    free = signup(client, name="Free Org")
    create_instance(client, free, name="only")
    time.sleep(0.5)
    assert stripe_api.requests == [], "a shrimp org has no subscription to sync"

    whale = signup(client, name="Big Fish Ltd")
    sub = subscribe(client, stripe_api, whale, "crab")
    wait_until(lambda: stripe_api.quantity(sub) == 0, "the crab subscription is synced")
    org_id = client.get("/v1/organization", headers=auth(whale)).json()["id"]
    db = Database(database_url)
    SqlTransactions(db).run_sync(lambda uow: orgs.set_tier(uow, org_id, Tier.WHALE))
    db.dispose()
    before = len(stripe_api.requests)
    create_instance(client, whale, name="granted")
    time.sleep(0.5)
    assert len(stripe_api.requests) == before, "an operator-granted whale is not billed per instance"


def test_events_delivered_out_of_order_do_not_undo_later_ones(
    billing_client: TestClient, stripe_api: FakeStripeApi
) -> None:
    client = billing_client
    key = signup(client)
    first = subscribe(client, stripe_api, key, "crab")
    customer = subscription(client, key)["stripe_customer_id"]
    now = int(time.time())
    canceled = {"id": first, "object": "subscription", "customer": customer, "status": "canceled"}
    assert deliver(client, "customer.subscription.deleted", canceled, "evt_deleted", created=now + 20) == 200
    assert subscription(client, key)["tier"] == "shrimp"
    active = {**canceled, "status": "active", "items": {"data": [{"price": {"id": PRICES["lobster"]}, "quantity": 1}]}}
    assert deliver(client, "customer.subscription.updated", active, "evt_late", created=now + 10) == 200
    assert subscription(client, key)["tier"] == "shrimp", "an update older than the cancellation is not applied"

    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    second = stripe_api.subscribe(customer, PRICES["lobster"], quantity=1)
    completed = completed_checkout(org_id, customer, second, "lobster")
    assert deliver(client, "checkout.session.completed", completed, "evt_again", created=now + 30) == 200
    assert deliver(client, "customer.subscription.deleted", canceled, "evt_old_sub", created=now + 40) == 200
    after = subscription(client, key)
    assert (after["tier"], after["stripe_subscription_id"]) == ("lobster", second), "the old subscription's event"


def test_webhooks_with_a_bad_signature_are_refused_and_change_nothing(billing_client: TestClient) -> None:
    client = billing_client
    key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    completed = completed_checkout(org_id, "cus_x", "sub_x", "lobster")
    assert deliver(client, "checkout.session.completed", completed, "evt_a", secret="whsec_someone_else") == 400
    missing = client.post("/v1/webhooks/stripe", content=b"{}", headers={"content-type": "application/json"})
    assert (missing.status_code, missing.json()) == (400, {"detail": "Invalid Stripe signature."})
    assert subscription(client, key)["tier"] == "shrimp"
    assert deliver(client, "checkout.session.completed", completed, "evt_a") == 200, "the event id was not used up"
    assert subscription(client, key)["tier"] == "lobster"


def test_without_stripe_settings_billing_answers_503_and_the_rest_works(client: TestClient) -> None:
    key = signup(client)
    unavailable = {"detail": "Billing is not configured on this server."}
    for path, body in (("/v1/subscription/checkout", {"tier": "crab"}), ("/v1/subscription/portal", None)):
        response = client.post(path, headers=auth(key), json=body)
        assert (response.status_code, response.json()) == (503, unavailable), path
    assert client.post("/v1/webhooks/stripe", content=b"{}").status_code == 503
    assert subscription(client, key)["tier"] == "shrimp"
    assert client.post("/v1/subscription/checkout", json={"tier": "crab"}).status_code == 401
