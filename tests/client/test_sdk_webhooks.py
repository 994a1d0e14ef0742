"""The SDK's webhook routes (extension) against a real server without the engine, blocking and async: an endpoint
created with its secret once, listed, read, its (empty) delivery log paged, deleted; and the typed errors."""

from __future__ import annotations

import asyncio

import pytest

from chowder.client import AsyncChowder, BadRequest, NotFound
from tests.client.conftest import Org


def test_endpoints_are_created_listed_read_and_deleted(org: Org) -> None:
    with org.client() as chowder:
        created = chowder.webhooks.create("https://hooks.example.com/x", events=["instance.error"], description="ops")
        assert created.secret.startswith("whsec_") and created.events == ["instance.error"]
        assert [found.id for found in chowder.webhooks.list()] == [created.id]
        read = chowder.webhooks.get(created.id)
        assert read.model_dump() == created.model_dump(exclude={"secret"})
        page = chowder.webhooks.deliveries(created.id, limit=10)
        assert (page.items, page.next_cursor) == ([], None)
        with pytest.raises(BadRequest, match="Unknown event type 'instance.nope'"):
            chowder.webhooks.create("https://hooks.example.com/x", events=["instance.nope"])
        chowder.webhooks.delete(created.id)
        with pytest.raises(NotFound, match="Webhook endpoint not found."):
            chowder.webhooks.get(created.id)


def test_the_async_client_has_the_same_routes(org: Org) -> None:
    async def scenario() -> None:
        async with AsyncChowder(org.server.url, org.key) as chowder:
            created = await chowder.webhooks.create("http://hooks.example.com/y")
            assert [found.id for found in await chowder.webhooks.list()] == [created.id]
            await chowder.webhooks.delete(created.id)
            assert await chowder.webhooks.list() == []

    asyncio.run(scenario())
