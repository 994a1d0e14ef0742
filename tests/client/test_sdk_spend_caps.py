"""The SDK's spend caps (extension) against a real server without the engine, blocking and async: a scoped key
created with a monthly token limit, its limit changed and lifted; the organization's set, kept by other changes and
lifted; this month's use in the usage report; a limit below 1 refused before it is sent."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from chowder.client import AsyncChowder
from tests.client.conftest import Org


def test_limits_of_a_key_and_of_the_organization(org: Org) -> None:
    with org.client() as chowder:
        made = chowder.keys.create("capped", instance_ids=[], permissions=["read"], monthly_token_limit=1000)
        assert (made.monthly_token_limit, made.monthly_tokens_used) == (1000, 0)
        assert chowder.keys.update(made.id, monthly_token_limit=5000).monthly_token_limit == 5000
        assert chowder.keys.update(made.id).monthly_token_limit == 5000, "a limit not given is kept"
        assert chowder.keys.update(made.id, monthly_token_limit=None).monthly_token_limit is None
        assert chowder.organization.update(monthly_token_limit=100_000).monthly_token_limit == 100_000
        assert chowder.organization.update(name="Renamed").monthly_token_limit == 100_000
        chowder.keys.update(made.id, monthly_token_limit=7)
        spend = chowder.organization.usage().spend
        assert spend is not None and spend.organization.monthly_token_limit == 100_000
        assert [(k.key_id, k.monthly_token_limit, k.monthly_tokens_used) for k in spend.keys] == [(made.id, 7, 0)]
        assert chowder.organization.update(monthly_token_limit=None).monthly_token_limit is None
        with pytest.raises(ValidationError, match="greater than or equal to 1"):  # checked before it is sent
            chowder.keys.update(made.id, monthly_token_limit=0)


def test_the_async_client_sets_them_too(org: Org) -> None:
    async def run() -> tuple[int | None, int | None]:
        async with AsyncChowder(org.server.url, org.key) as chowder:
            made = await chowder.keys.create("capped", instance_ids=[], permissions=["read"])
            key = await chowder.keys.update(made.id, monthly_token_limit=42)
            organization = await chowder.organization.update(monthly_token_limit=43)
            return key.monthly_token_limit, organization.monthly_token_limit

    assert asyncio.run(run()) == (42, 43)
