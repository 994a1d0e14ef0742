"""The SDK's session calls against a real server without the lifecycle engine (the instance stays
provisioning): each reaches its route, the import carrying its bytes, in both clients. What they do on a real
store is tests/e2e/test_sessions.py's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chowder.client import AsyncChowder, BadRequest, Conflict, NotFound
from tests.client.conftest import Org

NOT_SERVING = "Instance is provisioning; it must be running or stopped."
EXPORT = b'{"format":"chowder.session","version":1}\n{"role":"user","timestamp":"2026-12-05T00:00:00+00:00"}\n'


def _calls(sessions: Any, instance_id: str) -> list[Callable[[], Any]]:
    return [
        lambda: sessions.list(instance_id),
        lambda: sessions.get(instance_id, "trip:42"),
        lambda: sessions.delete(instance_id, "trip:42"),
        lambda: sessions.export(instance_id, "trip:42"),
        lambda: sessions.import_(instance_id, "trip:42", EXPORT * 20_000),  # 2.6 MB: past the 1 MiB default
    ]


def test_each_session_call_reaches_its_route(org: Org) -> None:
    with org.client() as chowder:
        instance_id = chowder.instances.create("sessions").id
        for call in _calls(chowder.sessions, instance_id):
            with pytest.raises(Conflict) as refused:
                call()
            assert refused.value.detail == NOT_SERVING
        with pytest.raises(BadRequest, match="Invalid session_id"):
            chowder.sessions.get(instance_id, "cron:nightly")
        with pytest.raises(NotFound, match="Instance not found."):
            chowder.sessions.list("00000000-0000-4000-8000-000000000000")


@pytest.mark.anyio
async def test_the_async_client_sends_the_same_session_calls(org: Org) -> None:
    async with AsyncChowder(org.server.url, org.key) as chowder:
        instance_id = (await chowder.instances.create("sessions")).id
        for call in _calls(chowder.sessions, instance_id):
            awaited: Awaitable[Any] = call()
            with pytest.raises(Conflict, match=NOT_SERVING):
                await awaited
