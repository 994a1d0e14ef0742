"""The model-call use case on a real database, with an exchange that shows what it was handed: who gets an
answer, with which key, and what usage lands against whom."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest, Unauthorized
from chowder.core.ids import hash_key
from chowder.core.pagination import BreakdownPage
from chowder.domain.model_calls import ModelCalls, warm_up_session
from chowder.domain.orgs import Organizations
from chowder.domain.ports.model_calls import CallSubject, RecordUsage
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.warm_pool import WarmGateway, WarmState
from chowder.domain.usage import OrganizationUsageReport, UsageReports
from chowder.persistence.store import SqlTransactions
from tests.factories import add_instance_of


async def _nobody(instance_id: str, session_id: str) -> str | None:
    """No turn holds any session."""
    return None


pytestmark = pytest.mark.persistence

T = TypeVar("T")
BOX = SecretBox("test")
CREDENTIAL = "instance-credential"


@dataclass
class Tokens:
    input_tokens: int
    output_tokens: int


class FakeExchange:
    """Answers with the key it was handed, reporting 7 + 3 tokens as a provider's metered answer would."""

    def __init__(self, session_id: str = "user:1") -> None:
        self.read = False
        self.session_id = session_id

    async def subject(self) -> CallSubject:
        self.read = True
        return CallSubject(model="claude-x", session_id=self.session_id)

    async def answer(self, api_key: str | None, on_usage: RecordUsage) -> str | None:
        await on_usage(Tokens(7, 3))
        return api_key


def org_with_instance(tx: SqlTransactions, model_keys: dict[str, str]) -> tuple[str, str]:
    """An org holding `model_keys` and an instance whose model credential is CREDENTIAL: their ids."""
    orgs = Organizations(tx, BOX)
    org_id = asyncio.run(orgs.signup("Model Co"))[0].id
    asyncio.run(orgs.update(org_id, None, model_keys))
    return org_id, tx.run_sync(lambda uow: add_instance_of(uow, org_id, CREDENTIAL))


def usage_of(tx: SqlTransactions, org_id: str) -> OrganizationUsageReport:
    return asyncio.run(UsageReports(tx).of_organization(org_id, None, None, BreakdownPage()))


def test_the_orgs_key_answers_and_the_tokens_are_charged_to_the_turns_key(tx: SqlTransactions) -> None:
    org_id, instance_id = org_with_instance(tx, {"anthropic": "sk-ant-real"})
    turns = {(instance_id, "user:1"): "key-1"}

    async def key_of(instance: str, session: str) -> str | None:
        return turns.get((instance, session))

    calls = ModelCalls(tx, BOX, key_of, need_key=True)

    assert asyncio.run(calls.serve("anthropic", CREDENTIAL, FakeExchange())) == "sk-ant-real"
    [by_key] = usage_of(tx, org_id).keys
    assert (by_key.group, by_key.requests, by_key.input_tokens, by_key.output_tokens) == ("key-1", 1, 7, 3)


def test_a_warm_up_turns_calls_get_no_provider_key_and_no_bill(tx: SqlTransactions) -> None:
    org_id, instance_id = org_with_instance(tx, {"anthropic": "sk-ant-real"})
    calls = ModelCalls(tx, BOX, _nobody, need_key=True)

    assert asyncio.run(calls.serve("anthropic", CREDENTIAL, FakeExchange(warm_up_session(instance_id)))) is None
    assert usage_of(tx, org_id).keys == []
    assert asyncio.run(calls.serve("anthropic", CREDENTIAL, FakeExchange(warm_up_session("another")))) == "sk-ant-real"


def test_a_warm_pool_members_credential_serves_its_warm_up_turn_only(tx: SqlTransactions) -> None:
    """A member belongs to no org yet: its warm-up is answered on the house, anything else is refused."""
    org_id, _ = org_with_instance(tx, {"anthropic": "sk-ant-real"})
    member = WarmGateway(
        sandbox_id="sb_member",
        provider="process",
        release="2026.1.1",
        slot=0,
        state=WarmState.BOOTING,
        owner="here",
        created_at=utcnow(),
        gateway_token_enc=BOX.encrypt("gateway"),
        model_token_hash=hash_key("member-credential"),
        model_token_enc=BOX.encrypt("member-credential"),
    )
    assert tx.run_sync(lambda uow: uow.warm_pool.add(member))
    calls = ModelCalls(tx, BOX, _nobody, need_key=True)

    warm_up = FakeExchange(warm_up_session("sb_member"))
    assert asyncio.run(calls.serve("anthropic", "member-credential", warm_up)) is None, "no provider key"
    with pytest.raises(Unauthorized):
        asyncio.run(calls.serve("anthropic", "member-credential", FakeExchange("user:1")))
    assert usage_of(tx, org_id).total.requests == 0

    # Claimed: a last warm-up on the member's session racing the claim is still on the house.
    tx.run_sync(lambda uow: add_instance_of(uow, org_id, "claimed-credential", sandbox_id="sb_member"))
    late_warm_up = FakeExchange(warm_up_session("sb_member"))
    assert asyncio.run(calls.serve("anthropic", "claimed-credential", late_warm_up)) is None
    assert usage_of(tx, org_id).total.requests == 0


def test_refused_calls_are_neither_read_nor_answered(tx: SqlTransactions) -> None:
    org_id, _ = org_with_instance(tx, {"anthropic": "sk-ant-real"})
    calls = ModelCalls(tx, BOX, _nobody, need_key=True)
    for provider, credential, error, detail in (
        ("anthropic", None, Unauthorized, "Missing instance credential."),
        ("anthropic", "someone-else", Unauthorized, "Invalid instance credential."),
        ("openai", CREDENTIAL, BadRequest, "No API key is configured for model provider 'openai'."),
    ):
        exchange = FakeExchange()
        with pytest.raises(error) as refused:
            asyncio.run(calls.serve(provider, credential, exchange))
        assert str(refused.value.detail).startswith(detail)
        assert not exchange.read
    assert usage_of(tx, org_id).total.requests == 0


def test_with_the_dev_model_no_key_is_needed_or_handed_out(tx: SqlTransactions) -> None:
    org_id, _ = org_with_instance(tx, {"anthropic": "sk-ant-real"})
    calls = ModelCalls(tx, BOX, _nobody, need_key=False)
    assert asyncio.run(calls.serve("openai", CREDENTIAL, FakeExchange())) is None
    total = usage_of(tx, org_id).total
    assert (total.requests, total.total_tokens) == (1, 10)


def test_a_usage_record_that_fails_is_logged_and_the_answer_stands(
    tx: SqlTransactions, caplog: pytest.LogCaptureFixture
) -> None:
    org_with_instance(tx, {"anthropic": "sk-ant-real"})
    transactions = 0

    async def fails_after_the_first(work: Callable[[UnitOfWork], T]) -> T:
        nonlocal transactions
        transactions += 1
        if transactions > 1:
            raise ConnectionError("the database went away")
        return await tx(work)

    fails_after_the_first.read = tx.read  # type: ignore[attr-defined]  # the spend caps' check, a short read

    calls = ModelCalls(fails_after_the_first, BOX, _nobody, need_key=True)
    assert asyncio.run(calls.serve("anthropic", CREDENTIAL, FakeExchange())) == "sk-ant-real"
    assert "could not record usage" in caplog.text
