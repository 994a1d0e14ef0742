"""What a chat turn needs before it can be proxied: a running instance, its gateway, and a model the
organization holds a key for (or the built-in dev model)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest
from chowder.core.model_providers import ModelProvider, provider_named, provider_of_model
from chowder.domain import spend
from chowder.domain.instance_access import running
from chowder.domain.orgs import required_model_key
from chowder.domain.ports.storage import Transactions, UnitOfWork

MAIN_SESSION = "main"
_SESSION_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_RESERVED_PREFIXES = ("subagent:", "cron:", "acp:")


@dataclass(frozen=True, slots=True)
class Turn:
    instance_id: str
    gateway_url: str
    gateway_token: str = field(repr=False)
    model_ref: str


def check_session_id(session_id: str) -> str:
    if not _SESSION_ID.fullmatch(session_id) or session_id.startswith(_RESERVED_PREFIXES):
        raise BadRequest(
            "Invalid session_id: use 1-128 characters of letters, digits and . _ : @ -, "
            "not starting with subagent:, cron: or acp:."
        )
    return session_id


def model_ref(model: str) -> tuple[ModelProvider, str]:
    """The provider and the `provider/model` reference of a model name: `provider/model` as written, a bare name
    by its prefix (`claude-…` → anthropic, `gpt-…`/`o1…` → openai, `gemini-…` → gemini). BadRequest otherwise."""
    provider_name, slash, name = model.partition("/")
    if slash:
        spec = provider_named(provider_name)
        if spec is None:
            raise BadRequest(f"Unknown model provider '{provider_name}' in model '{model}'.")
        return spec.name, f"{provider_name}/{name}"
    provider = provider_of_model(model)
    if provider is None:
        raise BadRequest(f"Cannot tell the provider of model '{model}'; name it as 'provider/model'.")
    return provider, f"{provider.value}/{model}"


class ChatTurns:
    """`need_key` is off when the built-in dev model answers every model call: then no provider key is needed."""

    def __init__(self, tx: Transactions, box: SecretBox, *, need_key: bool) -> None:
        self._tx = tx
        self._box = box
        self._need_key = need_key

    async def prepare_turn(self, org_id: str, instance_id: str, model: str, key_id: str | None = None) -> Turn:
        """Raises NotFound, InvalidState unless running, CapReached when the caller's key (`key_id`) or the org has
        used its monthly tokens, BadRequest for an unknown model or (when `need_key`) a provider the organization
        holds no key for."""
        return await self._tx(lambda uow: self._turn(uow, org_id, instance_id, model, key_id))

    async def cap_reached(self, org_id: str, key_id: str | None) -> spend.CapReached | None:
        """The refusal when the key's or the org's monthly tokens are used up by now."""
        try:
            await self._tx.read(lambda reads: spend.admit(reads.spend, org_id, key_id, utcnow()))
        except spend.CapReached as reached:
            return reached
        return None

    def _turn(self, uow: UnitOfWork, org_id: str, instance_id: str, model: str, key_id: str | None) -> Turn:
        instance = running(uow.instances.get(org_id, instance_id))
        assert instance.gateway_url is not None
        spend.admit(uow.spend, org_id, key_id, utcnow())
        provider, ref = model_ref(model)
        if self._need_key:
            required_model_key(uow, org_id, provider)
        return Turn(instance.id, instance.gateway_url, self._box.decrypt(instance.gateway_token_enc), ref)
