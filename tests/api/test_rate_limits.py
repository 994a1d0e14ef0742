"""Rate limits (extension) on the real app: the X-RateLimit headers on every answer, 429 with Retry-After past
an API key's, an organization's and an address's signup quota, each refusal saying which; the buckets refill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from chowder.api.deps import BearerKey
from chowder.core.rate_limits import Quota, Quotas, RateLimiter
from chowder.core.settings import Settings
from tests.api.conftest import client_for
from tests.factories import auth, scoped_key, signup

pytestmark = pytest.mark.persistence


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    quotas = {"rate_limit_key_per_min": 5, "rate_limit_org_per_min": 7, "rate_limit_signup_per_hour": 2}
    with client_for(settings.model_copy(update=quotas)) as client:
        yield client


def test_every_answer_carries_the_headers(client: TestClient) -> None:
    key = signup(client)
    for response in (client.get("/healthz"), client.get("/v1/organization", headers=auth(key))):
        assert response.headers["x-ratelimit-limit"] in {"1200", "6000"}
        assert int(response.headers["x-ratelimit-remaining"]) < int(response.headers["x-ratelimit-limit"])
        assert int(response.headers["x-ratelimit-reset"]) > 1_700_000_000
        assert "retry-after" not in response.headers


def test_a_key_over_its_quota_gets_429_with_retry_after(limited: TestClient) -> None:
    key = signup(limited)  # its model keys were set with it: one request of its five
    remaining = [
        int(limited.get("/v1/organization", headers=auth(key)).headers["x-ratelimit-remaining"]) for _ in "abcd"
    ]
    assert remaining == [3, 2, 1, 0]
    refused = limited.get("/v1/organization", headers=auth(key))
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "Rate limit exceeded: 5 requests per minute for this API key. Retry after 12 s."
    }
    assert refused.headers["retry-after"] == "12" and refused.headers["x-ratelimit-remaining"] == "0"


def test_an_organization_over_its_quota_gets_429_whichever_key_asks(limited: TestClient) -> None:
    org_key = signup(limited)
    instance = limited.post("/v1/instances", json={"name": "a"}, headers=auth(org_key)).json()["id"]
    reader = scoped_key(limited, org_key, [instance], ["read"])  # the org and its key have spent 3 each
    for _ in range(3):
        assert limited.get(f"/v1/instances/{instance}", headers=auth(reader)).status_code == 200
    answers = [limited.get("/v1/organization", headers=auth(org_key)) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429], "the key had 1 left, its organization none"
    assert answers[0].headers["x-ratelimit-remaining"] == "0" and answers[0].headers["x-ratelimit-limit"] == "7"
    detail = answers[1].json()["detail"]
    assert detail.startswith("Rate limit exceeded: 7 requests per minute for this organization."), detail
    assert "retry-after" in answers[1].headers


def test_signups_are_limited_per_address(limited: TestClient) -> None:
    for name in ("One", "Two"):
        assert limited.post("/v1/organization/signup", json={"name": name}).status_code == 201
    refused = limited.post("/v1/organization/signup", json={"name": "Three"})
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Rate limit exceeded: 2 signups from this address per hour.")


def test_a_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0], wall=lambda: 1_800_000_000.0)
    quota = Quota(2, 60)
    verdicts = [limiter.charge("key", "k", quota) for _ in range(3)]
    assert [verdict is not None and verdict.allowed for verdict in verdicts] == [True, True, False]
    refused = limiter.charge("key", "k", quota)
    assert refused is not None and refused.retry_after_s == 30 and refused.reset == 1_800_000_060
    now[0] = 30.0
    allowed = limiter.charge("key", "k", quota)
    assert allowed is not None and allowed.allowed and allowed.remaining == 0
    assert limiter.charge("key", "other", quota) is not None, "each caller its own bucket"
    assert limiter.charge("key", "k", Quota(0, 60)) is None, "0 is no limit"


def test_several_workers_each_enforce_their_share_of_every_quota(settings: Settings) -> None:
    """Each worker of `serve --workers N` holds its own buckets: together they never let a caller past a quota."""
    quotas = {"rate_limit_key_per_min": 1200, "rate_limit_org_per_min": 0, "rate_limit_signup_per_hour": 3}
    shares = Quotas.of(settings.model_copy(update={**quotas, "workers": 4}))
    assert (shares.key.capacity, shares.org.capacity, shares.signup.capacity) == (300, 0, 1)  # 0 stays no limit
    assert Quotas.of(settings.model_copy(update=quotas)).key.capacity == 1200


def test_every_route_authenticates_its_caller_at_most_once(client: TestClient) -> None:
    """Authenticating charges the organization's bucket: a route whose dependencies resolved the caller twice
    would spend two requests of it for one (each guard resolves the caller itself)."""

    def authentications(dependant: Dependant) -> int:
        return int(isinstance(dependant.call, BearerKey)) + sum(authentications(sub) for sub in dependant.dependencies)

    included = [getattr(route, "original_router", None) for route in client.app.routes]  # type: ignore[attr-defined]
    routes = [route for router in included if router for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 40
    assert {
        route.path: authentications(route.dependant) for route in routes if authentications(route.dependant) > 1
    } == {}


def test_every_route_that_needs_a_key_documents_the_bearer_scheme(client: TestClient) -> None:
    """Guards are security schemes themselves, and the polled reads that call theirs directly declare it: either
    way the OpenAPI document says which routes need a key. Only the probe, signup, Stripe's webhook and a
    channel's setup form need none."""
    document = client.get("/openapi.json").json()
    keyless = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") != [{"HTTPBearer": []}]
    }
    assert keyless == {
        "GET /healthz",
        "POST /v1/organization/signup",
        "POST /v1/webhooks/stripe",
        "GET /v1/instances/{instance_id}/channels/{channel}",
    }
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
