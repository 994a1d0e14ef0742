"""What a chat turn needs before it can be proxied: a running instance, its gateway, and a model the
organization holds a key for (or the built-in dev model)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chowder.core.crypto import SecretBox
from chowder.core.errors import BadRequest
from chowder.domain.instance_access import running
from chowder.domain.models import ModelProvider
from chowder.persistence.instances import SqlInstanceRepository
from chowder.persistence.repositories import TenantRepository

MAIN_SESSION = "main"
_SESSION_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_RESERVED_PREFIXES = ("subagent:", "cron:", "acp:")
_PREFIXES: tuple[tuple[tuple[str, ...], ModelProvider], ...] = (
    (("claude",), ModelProvider.ANTHROPIC),
    (("gpt", "o1", "o3", "o4", "chatgpt"), ModelProvider.OPENAI),
    (("gemini",), ModelProvider.GEMINI),
)


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
    """`claude-…` → anthropic, `gpt-…`/`o1…` → openai, `gemini-…` → gemini; `provider/model` as written."""
    provider_name, slash, name = model.partition("/")
    if slash:
        try:
            return ModelProvider(provider_name), f"{provider_name}/{name}"
        except ValueError:
            raise BadRequest(f"Unknown model provider '{provider_name}' in model '{model}'.") from None
    for prefixes, provider in _PREFIXES:
        if model.lower().startswith(prefixes):
            return provider, f"{provider.value}/{model}"
    raise BadRequest(f"Cannot tell the provider of model '{model}'; name it as 'provider/model'.")


def prepare_turn(
    repo: TenantRepository, box: SecretBox, org_id: str, instance_id: str, model: str, *, need_key: bool
) -> Turn:
    """Raises NotFound, InvalidState unless running, BadRequest for an unknown model or (when `need_key`,
    i.e. the dev model is off) a provider the organization holds no key for."""
    instance = running(SqlInstanceRepository(repo.session).get(org_id, instance_id))
    assert instance.gateway_url is not None
    provider, ref = model_ref(model)
    if need_key and repo.model_key(org_id, provider) is None:
        raise BadRequest(
            f"No API key is configured for model provider '{provider.value}'. Set one with PATCH /v1/organization."
        )
    return Turn(instance.id, instance.gateway_url, box.decrypt(instance.gateway_token_enc), ref)
