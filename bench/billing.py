"""Billing figures: what the Stripe quantity sync costs an instance call, and how fast Stripe catches up.

In one process: the API (no lifecycle engine, so no gateways), SQLite, and the tests' fake Stripe API on
loopback. One crab org creates and deletes instances with Stripe up and with Stripe down, alternating pair by
pair, so both are measured side by side. Prints medians; not a pass/fail test.

    .venv/bin/python bench/billing.py --pairs 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from chowder.api.app import create_app
from chowder.core.settings import Settings
from tests.factories import auth, create_instance, signup, wait_until
from tests.fakes.stripe_api import FakeStripeApi, completed_checkout, signed_event

API_KEY, SECRET, PRICE = "sk_test_bench", "whsec_bench", "price_crab"


def subscribed_org(client: TestClient, stripe_api: FakeStripeApi) -> tuple[str, str]:
    key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    client.post("/v1/subscription/checkout", headers=auth(key), json={"tier": "crab"})
    customer = stripe_api.posted("/v1/checkout/sessions")[-1]["customer"]
    sub = stripe_api.subscribe(customer, PRICE, quantity=1)
    completed = completed_checkout(org_id, customer, sub, "crab")
    payload, signature = signed_event("checkout.session.completed", completed, SECRET, "evt_bench")
    client.post("/v1/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature})
    wait_until(lambda: stripe_api.quantity(sub) == 0, "the subscription is synced")
    return key, sub


def create_and_delete(client: TestClient, key: str) -> tuple[float, float]:
    started = time.perf_counter()
    instance_id = create_instance(client, key)["id"]
    created = time.perf_counter()
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    return created - started, time.perf_counter() - created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    pairs = parser.parse_args().pairs
    with tempfile.TemporaryDirectory() as data_dir, FakeStripeApi(API_KEY) as stripe_api:
        settings = Settings(
            data_dir=Path(data_dir),
            stripe_secret_key=API_KEY,
            stripe_webhook_secret=SECRET,
            stripe_price_crab=PRICE,
            stripe_api_base=stripe_api.url,
            stripe_sync_retry_s=1.0,
        )
        app = create_app(settings, run_engine=False, serve_sandboxes=False)
        with TestClient(app) as client:
            key, sub = subscribed_org(client, stripe_api)
            names = ("up_create", "up_delete", "down_create", "down_delete", "lag")
            figures: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(pairs):
                for down in (False, True):
                    stripe_api.down = down
                    create_s, delete_s = create_and_delete(client, key)
                    figures[f"{'down' if down else 'up'}_create"].append(create_s)
                    figures[f"{'down' if down else 'up'}_delete"].append(delete_s)
                stripe_api.down = False
                started = time.perf_counter()
                instance_id = create_instance(client, key)["id"]
                wait_until(lambda: stripe_api.quantity(sub) == 1, "Stripe holds the new count")
                figures["lag"].append(time.perf_counter() - started)
                client.delete(f"/v1/instances/{instance_id}", headers=auth(key))
                wait_until(lambda: stripe_api.quantity(sub) == 0, "Stripe holds the count after the delete")

            stripe_api.down = True
            for name in ("a", "b", "c"):
                create_instance(client, key, name=name)
            time.sleep(2)
            stripe_api.down = False
            recovered = time.perf_counter()
            wait_until(lambda: stripe_api.quantity(sub) == 3, "the sync recovers")
            recovery_s = time.perf_counter() - recovered

    ms = {name: statistics.median(values) * 1000 for name, values in figures.items()}
    print(f"{pairs} pairs, SQLite, Stripe on loopback (medians)")
    print(f"create  Stripe up {ms['up_create']:7.1f} ms   Stripe down {ms['down_create']:7.1f} ms")
    print(f"delete  Stripe up {ms['up_delete']:7.1f} ms   Stripe down {ms['down_delete']:7.1f} ms")
    print(f"create → Stripe quantity updated: {ms['lag']:.1f} ms")
    print(f"outage over → quantity right: {recovery_s:.2f} s (retry every {settings.stripe_sync_retry_s:.0f} s)")


if __name__ == "__main__":
    main()
