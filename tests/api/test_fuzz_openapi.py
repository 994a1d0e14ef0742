"""Property-based fuzzing of the whole OpenAPI document with schemathesis, against a real `chowder serve
--no-engine` (nothing boots; an org key with the calls' permissions): no 5xx (but billing's documented 503 on a
server without Stripe), every error a JSON `detail`, and documented answers matching their schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e.harness import Server
from tests.factories import auth, signup

BILLING_OFF = {"detail": "Billing is not configured on this server."}
EXAMPLES = 12


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", command=("serve", "--no-engine"))
    server.start()
    try:
        yield server, signup(server.client, "Fuzz")
    finally:
        server.stop()


def _error_has_detail(response: Any) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict) and "detail" in body, (response.status_code, response.text[:500])


def test_no_server_errors_and_every_error_a_detail(served: tuple[Server, str]) -> None:
    """Every operation, `EXAMPLES` generated requests each (schemathesis's strategies run by Hypothesis here: its
    pytest plugin does not load on this pytest)."""
    server, key = served
    operations = [
        result.ok() for result in schemathesis.openapi.from_url(f"{server.url}/openapi.json").get_all_operations()
    ]
    assert len(operations) > 40

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            response = case.call(base_url=server.url, headers=auth(key))
            if response.status_code == 503 and response.json() == BILLING_OFF:
                return
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            _error_has_detail(response)

        fuzz()
