"""Who may call a model through the control plane, and what each call is charged: a live instance's own
credential, only for the providers its organization holds a key for (any provider when the built-in dev model
answers); the tokens of every answer are recorded against the org, instance, session and API key behind it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import Unauthorized
from chowder.core.ids import hash_key
from chowder.domain import spend
from chowder.domain.orgs import required_model_key
from chowder.domain.ports.model_calls import CallSubject, ModelExchange, TokenCounts
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.ports.tenancy import UsageEvent

log = logging.getLogger("chowder.modelgw")
Answer = TypeVar("Answer")
_WARM_UP_PREFIX = "chowder-warm-up-"


def warm_up_session(instance_id: str) -> str:
    """The session of the instance's warm-up turns (`AgentLauncher.warm_up`, one per boot): its model calls are
    answered here by the echo model, never sent to a provider nor charged. One session for all boots, so they add
    two short messages each to it rather than a session each (the gateway's RPC cannot delete one)."""
    return _WARM_UP_PREFIX + hash_key(f"warm-up:{instance_id}")[:24]


async def _not_charged(_tokens: TokenCounts) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Access:
    instance_id: str
    organization_id: str
    provider: str
    api_key: str | None = field(repr=False)  # None when no key is needed (the dev model answers)
    # Its own, and the one its sandbox had as a warm pool member (a last warm-up may race with the claim).
    warm_up_sessions: frozenset[str] = frozenset()


class ModelCalls:
    """`key_of_session` names the API key whose chat turn holds an instance's session right now: the key a model
    call made during that turn is charged to. `on_use` hears of each call's org and instance as it starts,
    `on_tokens` of each charged call's provider and tokens as they are known (the metrics)."""

    def __init__(
        self,
        tx: Transactions,
        box: SecretBox,
        key_of_session: Callable[[str, str], Awaitable[str | None]],
        *,
        need_key: bool,
        on_use: Callable[[str, str], None] = lambda _org_id, _instance_id: None,
        on_tokens: Callable[[str, int, int], None] = lambda _provider, _input, _output: None,
    ) -> None:
        self._tx = tx
        self._box = box
        self._key_of_session = key_of_session
        self._need_key = need_key
        self._on_use = on_use
        self._on_tokens = on_tokens

    async def serve(self, provider: str, credential: str | None, exchange: ModelExchange[Answer]) -> Answer:
        """The exchange's answer, with the org's key for `provider` (None when the dev model answers: the org's
        key is not even read); its tokens are recorded once it has been sent. Raises Unauthorized for a missing
        credential or one of no live instance, BadRequest when the org holds no key for `provider`, CapReached
        when the turn's scoped key or the org has used its monthly tokens."""
        if credential is None:
            raise Unauthorized("Missing instance credential.")
        access = await self._tx(lambda uow: self._access(uow, credential, provider))
        if access is None:  # a warm pool member's: only its warm-up turn, on the house
            member = await self._tx(lambda uow: uow.warm_pool.by_model_token(hash_key(credential)))
            if member is None or (await exchange.subject()).session_id != warm_up_session(member.sandbox_id):
                raise Unauthorized("Invalid instance credential.")
            return await exchange.answer(None, _not_charged)
        self._on_use(access.organization_id, access.instance_id)  # in use until the answer has gone out
        subject = await exchange.subject()
        if subject.session_id in access.warm_up_sessions:
            return await exchange.answer(None, _not_charged)
        # The turn's key as the call starts: the turn may end before the call's tokens are known.
        key_id = await self._key_of_session(access.instance_id, subject.session_id) if subject.session_id else None
        capped_key = await self._tx.read(
            lambda reads: spend.admit(reads.spend, access.organization_id, key_id, utcnow())
        )
        return await exchange.answer(access.api_key, partial(self._record, access, subject, key_id, capped_key))

    def _access(self, uow: UnitOfWork, credential: str, provider: str) -> _Access | None:
        """None when no live instance holds the credential."""
        instance = uow.instances.by_model_token(hash_key(credential))
        if instance is None:
            return None
        org_id = instance.organization_id
        uow.instances.touch(org_id, instance.id, utcnow())  # a model call is activity: idleness counts from here
        api_key = self._box.decrypt(required_model_key(uow, org_id, provider)) if self._need_key else None
        warm_ups = {
            warm_up_session(instance.id),
            *([warm_up_session(instance.sandbox_id)] if instance.sandbox_id else []),
        }
        return _Access(instance.id, org_id, provider, api_key, frozenset(warm_ups))

    async def _record(
        self, access: _Access, subject: CallSubject, key_id: str | None, capped_key: str | None, tokens: TokenCounts
    ) -> None:
        """Never raises: the answer has gone out already, a lost record must not fail it. The event and the
        month's totals (`capped_key`: the scoped key charged beside the org) are written together."""
        session_id = subject.session_id
        event = UsageEvent(
            organization_id=access.organization_id,
            instance_id=access.instance_id,
            session_id=session_id,
            key_id=key_id,
            provider=access.provider,
            model=subject.model,
            input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens,
        )
        self._on_tokens(access.provider, tokens.input_tokens, tokens.output_tokens)
        total = tokens.input_tokens + tokens.output_tokens

        def record(uow: UnitOfWork) -> None:
            now = utcnow()
            uow.usage.record(event, now)
            spend.charge(uow, access.organization_id, capped_key, total, now)

        try:
            await self._tx(record)
        except Exception:
            log.exception("could not record usage of instance %s", access.instance_id)
