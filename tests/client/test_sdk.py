"""The SDK against a real server without the lifecycle engine: every route it can reach there, the typed
errors, paging, the retry policy and the wait for `running`."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from datetime import UTC, datetime, timedelta

import pytest

import chowder.client
from chowder.client import (
    AsyncChowder,
    Chowder,
    ChowderError,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    Progress,
    RateLimited,
    Retries,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    WaitTimeout,
)
from chowder.schemas.instances import AutoStop
from tests.client.conftest import Org, start_server, stop_server
from tests.factories import wait_until

FAST = Retries(attempts=3, backoff_s=0.01)


def test_the_organization_signs_up_reads_and_updates(org: Org) -> None:
    with org.client() as chowder:
        found = chowder.organization.get()
        assert found.id == org.id and found.model_providers == ["anthropic"]
        assert found.subscription_tier == "shrimp" and found.instance_limit == 1
        renamed = chowder.organization.update(name="Renamed", model_api_keys={"openai": "sk-test", "anthropic": ""})
        assert renamed.name == "Renamed" and renamed.model_providers == ["openai"]
        subscription = chowder.subscription.get()
        assert (subscription.tier, subscription.instance_limit, subscription.instance_count) == ("shrimp", 1, 0)


def test_instances_are_created_listed_read_updated_and_deleted(org: Org) -> None:
    with org.client() as chowder:
        created = chowder.instances.create("helper", egress="none", auto_stop=None, region="home")
        assert created.status == "provisioning" and created.name == "helper"
        assert (created.egress, created.auto_stop, created.region) == ("none", None, "home")
        assert [i.id for i in chowder.instances.list()] == [created.id]
        assert chowder.instances.get(created.id) == created
        assert chowder.instances.status(created.id).status == "provisioning"
        updated = chowder.instances.update(
            created.id, name="renamed", auto_stop=AutoStop(freeze_after_s=60, stop_after_s=600)
        )
        assert updated.name == "renamed" and updated.auto_stop == AutoStop(freeze_after_s=60, stop_after_s=600)
        assert chowder.organization.get().instance_count == 1
        chowder.instances.delete(created.id)
        assert chowder.instances.list() == []
        with pytest.raises(NotFound) as gone:
            chowder.instances.get(created.id)
        assert (gone.value.status, gone.value.detail) == (404, "Instance not found.")


def test_errors_carry_the_status_and_the_servers_detail(org: Org) -> None:
    with org.client() as chowder:
        instance = chowder.instances.create("one")
        with pytest.raises(PaymentRequired) as limit:
            chowder.instances.create("two")
        assert limit.value.detail == "Instance limit reached (1/1). Upgrade your subscription."
        with pytest.raises(Conflict) as state:
            chowder.instances.start(instance.id)
        assert state.value.status == 409 and "must be stopped to start" in state.value.detail
        with pytest.raises(Conflict, match="Instance is provisioning, not running."):
            chowder.files.list(instance.id)
        with pytest.raises(Conflict, match="not running"):
            chowder.responses.stream(instance.id, "hi", model="claude-sonnet-4-20250514")
    with org.client("chd_org_" + "0" * 64) as stranger, pytest.raises(Unauthorized, match="Invalid API key."):
        stranger.instances.list()


def test_scoped_keys_are_created_listed_paged_and_revoked(org: Org) -> None:
    with org.client() as chowder:
        instance = chowder.instances.create("scoped")
        expiry = datetime.now(UTC) + timedelta(days=1)
        made = [
            chowder.keys.create(f"key-{n}", instance_ids=[instance.id], permissions=["read"], expires_at=expiry)
            for n in range(3)
        ]
        assert all(key.raw_key.startswith("chd_sk_") for key in made)
        assert [k.id for k in chowder.keys.list()] == [k.id for k in reversed(made)]
        first = chowder.keys.list_page(limit=2)
        assert len(first.items) == 2 and first.next_cursor is not None
        rest = chowder.keys.list_page(limit=2, cursor=first.next_cursor)
        assert [k.id for k in first.items + rest.items] == [k.id for k in reversed(made)] and rest.next_cursor is None
        detail = chowder.keys.get(made[0].id)
        assert [(g.instance_id, g.permissions) for g in detail.instances] == [(instance.id, ["read"])]

        with org.client(made[0].raw_key) as scoped:
            assert scoped.instances.get(instance.id).id == instance.id
            with pytest.raises(Forbidden, match="requires an organization key"):
                scoped.instances.list()
            with pytest.raises(Forbidden, match="lacks the 'files' permission"):
                scoped.files.list(instance.id)
            chowder.keys.revoke(made[0].id)
            with pytest.raises(Unauthorized):
                scoped.instances.get(instance.id)
        assert not chowder.keys.get(made[0].id).is_active


def test_instance_lists_page_with_a_cursor(org: Org) -> None:
    org.make_whale()
    with org.client() as chowder:
        ids = [chowder.instances.create(f"fleet-{n}").id for n in range(3)]
        pages = [chowder.instances.list_page(limit=2)]
        while (cursor := pages[-1].next_cursor) is not None:
            pages.append(chowder.instances.list_page(limit=2, cursor=cursor))
        assert [len(p.items) for p in pages] == [2, 1]
        assert [i.id for p in pages for i in p.items] == list(reversed(ids))


def test_usage_audit_and_channel_catalog(org: Org) -> None:
    with org.client() as chowder:
        instance = chowder.instances.create("watched")
        usage = chowder.instances.usage(instance.id)
        assert usage.instance_id == instance.id and usage.total.requests == 0 and usage.sessions == []
        assert chowder.organization.usage(since=datetime.now(UTC) - timedelta(hours=1)).total.total_tokens == 0
        actions = [event.action for event in chowder.organization.audit(instance_id=instance.id)]
        assert actions == ["POST /v1/instances", "instance.create"] or actions == ["instance.create"], actions
        page = chowder.organization.audit_page(limit=1)
        assert len(page.items) == 1 and page.next_cursor is not None
    with Chowder(org.server.url) as anonymous:  # the channel catalog needs no key
        info = anonymous.channels.info(instance.id, "telegram")
        assert info.connection_type == "token" and "token" in info.required_fields
        with pytest.raises(NotFound):
            anonymous.channels.info(instance.id, "carrier-pigeon")


def test_wait_until_running_reports_progress_and_gives_up_in_time(org: Org) -> None:
    seen: list[Progress] = []
    with org.client() as chowder:
        instance = chowder.instances.create("never-boots")  # no engine on this server
        started = time.monotonic()
        with pytest.raises(WaitTimeout, match="still provisioning"):
            chowder.instances.wait_until_running(instance.id, timeout=1.0, on_progress=seen.append, interval=0.2)
    assert 1.0 <= time.monotonic() - started < 10
    assert len(seen) >= 3 and all(p.instance.status == "provisioning" for p in seen)
    assert seen[0].elapsed_s < seen[-1].elapsed_s
    assert {p.step for p in seen} <= {"instance.create", "POST /v1/instances"} and seen[-1].step is not None


def test_only_calls_safe_to_repeat_are_retried(org: Org) -> None:
    """Checkout answers 503 on a server without Stripe: a POST is sent once, unless it carries an
    Idempotency-Key. The audit log, which records every answered call, counts what reached the server."""
    with Chowder(org.server.url, org.key, retries=FAST) as chowder:
        with pytest.raises(ServiceUnavailable, match="Billing is not configured") as once:
            chowder.subscription.checkout("crab")
        assert once.value.status == 503
        with pytest.raises(ServiceUnavailable):
            chowder.subscription.checkout("crab", idempotency_key="checkout-1")

        def statuses() -> list[int | None]:
            return [e.status_code for e in chowder.organization.audit(action="POST /v1/subscription/checkout")]

        # An entry is written once its answer has gone out: the last one may trail the exception by a moment.
        wait_until(lambda: len(statuses()) >= 1 + 1 + FAST.attempts, "every attempt is in the audit log", 10)
        time.sleep(0.5)
        assert statuses() == [503] * (1 + 1 + FAST.attempts)


def test_an_idempotency_key_makes_a_repeated_create_answer_the_first_time(org: Org) -> None:
    with org.client() as chowder:
        first = chowder.instances.create("once", idempotency_key="create-once")
        # The server settles the key just after answering: a repeat at once may find it still in progress (409).
        deadline = time.monotonic() + 5
        while True:
            try:
                again = chowder.instances.create("once", idempotency_key="create-once")  # not a 402: the plan's 1
                break
            except Conflict as exc:
                assert "still in progress" in exc.detail and time.monotonic() < deadline
                time.sleep(0.1)
        assert again == first and [i.id for i in chowder.instances.list()] == [first.id]
        with pytest.raises(Unprocessable, match="different request"):
            chowder.instances.create("other", idempotency_key="create-once")


def test_a_server_that_cannot_be_reached_is_a_chowder_error() -> None:
    with Chowder("http://127.0.0.1:9", "chd_org_x", retries=FAST) as chowder, pytest.raises(ChowderError) as failed:
        chowder.instances.list()
    assert failed.value.status is None and "Could not reach http://127.0.0.1:9" in str(failed.value)


def test_rate_limited_calls_say_when_to_come_back() -> None:
    server, data_dir = start_server("--no-engine", CHOWDER_RATE_LIMIT_KEY_PER_MIN="2")
    try:
        with Chowder(server.url) as anonymous:
            key = anonymous.organization.signup("Limited").api_key
        with Chowder(server.url, key) as chowder, pytest.raises(RateLimited) as limited:
            for _ in range(5):
                chowder.organization.get()
        assert limited.value.status == 429 and limited.value.retry_after is not None
        assert 0 < limited.value.retry_after <= 60
    finally:
        stop_server(server, data_dir)


@pytest.mark.anyio
async def test_the_async_client_sends_the_same_calls(org: Org) -> None:
    async with AsyncChowder(org.server.url, org.key) as chowder:
        created = await chowder.instances.create("async")
        assert [i.id for i in await chowder.instances.list()] == [created.id]
        assert (await chowder.instances.get(created.id)).name == "async"
        key = await chowder.keys.create("async-key", instance_ids=[created.id], permissions=["interact"])
        assert [k.id for k in await chowder.keys.list()] == [key.id]
        with pytest.raises(Conflict, match="not running"):
            await chowder.responses.stream(created.id, "hi", model="claude-sonnet-4-20250514")
        with pytest.raises(Conflict, match="not running"):
            await chowder.files.open(created.id, "openclaw.json")
        seen: list[Progress] = []
        with pytest.raises(WaitTimeout):
            await chowder.instances.wait_until_running(created.id, 0.5, seen.append, interval=0.1)
        assert seen and seen[-1].step is not None
        await chowder.instances.delete(created.id)
        with pytest.raises(NotFound, match="Instance not found."):
            await chowder.instances.get(created.id)


def test_the_sdk_loads_no_server_code() -> None:
    """It needs only httpx and pydantic: a script or the CLI's client commands must not pay for the server."""
    server_side = ("fastapi", "sqlalchemy", "starlette", "uvicorn", "docker", "kubernetes")
    probe = f"import sys, chowder.client; print(sorted(m for m in {server_side} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_is_exported() -> None:
    names = {name for name in dir(chowder.client) if not name.startswith("_")}
    public = {name for name in names if not isinstance(getattr(chowder.client, name), types.ModuleType)}
    assert public == set(chowder.client.__all__)
