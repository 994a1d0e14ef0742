"""`/metrics` (extension): off without CHOWDER_METRICS_TOKEN, only to a request bearing it, and then the
Prometheus text of what happened: requests by route template and status, the instance census and the engine's
queue read from the database, rate-limit refusals. The engine's boot and stop histograms are checked on a real
lifecycle (tests/e2e/test_lifecycle.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chowder.core.settings import Settings
from tests.api.conftest import client_for
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.persistence

TOKEN = "scraper-secret"


@pytest.fixture
def scraped(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings.model_copy(update={"metrics_token": TOKEN, "rate_limit_key_per_min": 4})) as client:
        yield client


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers=auth(TOKEN))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_are_off_without_a_token(client: TestClient) -> None:
    response = client.get("/metrics")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "Metrics are off on this server: set CHOWDER_METRICS_TOKEN to serve them."},
    )


def test_only_the_scraper_reads_them(scraped: TestClient) -> None:
    org_key = signup(scraped)
    for headers in ({}, auth("wrong"), auth(org_key)):
        response = scraped.get("/metrics", headers=headers)
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid metrics token."})


def test_requests_census_queue_and_refusals(scraped: TestClient) -> None:
    key = signup(scraped)
    create_instance(scraped, key)
    while scraped.get("/v1/instances", headers=auth(key)).status_code != 429:
        pass
    seen = samples(scraped)
    created = frozenset({("method", "POST"), ("route", "/v1/instances"), ("status", "201")})
    assert seen[("chowder_http_request_duration_seconds_count", created)] == 1
    refused = frozenset({("method", "GET"), ("route", "/v1/instances"), ("status", "429")})
    assert ("chowder_http_request_duration_seconds_count", refused) not in seen, "refused before routing"
    unmatched = frozenset({("method", "GET"), ("route", "unmatched"), ("status", "429")})
    assert seen[("chowder_http_request_duration_seconds_count", unmatched)] == 1
    assert seen[("chowder_rate_limit_refusals_total", frozenset({("bucket", "key")}))] == 1
    provisioning = frozenset({("status", "provisioning"), ("provider", "process")})
    assert seen[("chowder_instances", provisioning)] == 1
    assert seen[("chowder_engine_queue_depth", frozenset())] == 1, "no engine here: the new instance waits"
