"""The model providers Chowder routes model calls to, each described once.

The schemas, chat's model names, the model gateway and the settings all read this registry, so a new provider is
one entry here, plus how the agent runtime calls it (its own config, e.g. `runtime/openclaw/config.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class ModelProvider(StrEnum):
    """A model provider an organization holds a key for and an instance runs its agent on."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GEMINI = "gemini"


class ProviderProtocol(StrEnum):
    """The API a provider speaks; the model gateway answers its own errors in that API's shape, so the agent
    reports them as the provider's."""

    ANTHROPIC_MESSAGES = "anthropic-messages"
    OPENAI_COMPATIBLE = "openai-compatible"


# An HTTP method and a path below the provider's base URL (no leading slash).
Route = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: ModelProvider
    protocol: ProviderProtocol
    # The `Settings` field holding the upstream (no /v1), set by `CHOWDER_<FIELD>`: tests point it at a fake.
    base_url_setting: str
    # The organization's real key travels upstream in this header, after this prefix.
    key_header: str
    key_prefix: str
    # A bare model name starting with one of these (any case) belongs to this provider.
    model_prefixes: tuple[str, ...]
    # All a sandbox may ask of the provider: the rest of its API (files, batches, fine-tuning, admin) is never
    # reachable with an instance's credential.
    routes: frozenset[Route]


PROVIDERS: Mapping[ModelProvider, ProviderSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ProviderSpec(
                ModelProvider.ANTHROPIC,
                ProviderProtocol.ANTHROPIC_MESSAGES,
                base_url_setting="anthropic_base_url",
                key_header="x-api-key",
                key_prefix="",
                model_prefixes=("claude",),
                routes=frozenset({("POST", "v1/messages"), ("POST", "v1/messages/count_tokens"), ("GET", "v1/models")}),
            ),
            ProviderSpec(
                ModelProvider.OPENAI,
                ProviderProtocol.OPENAI_COMPATIBLE,
                base_url_setting="openai_base_url",
                key_header="authorization",
                key_prefix="Bearer ",
                model_prefixes=("gpt", "o1", "o3", "o4", "chatgpt"),
                routes=frozenset({("POST", "v1/responses"), ("POST", "v1/chat/completions"), ("GET", "v1/models")}),
            ),
            ProviderSpec(
                ModelProvider.GEMINI,
                ProviderProtocol.OPENAI_COMPATIBLE,
                base_url_setting="gemini_base_url",
                key_header="authorization",
                key_prefix="Bearer ",
                model_prefixes=("gemini",),
                routes=frozenset({("POST", "chat/completions"), ("GET", "models")}),
            ),
        )
    }
)


def provider_named(name: str) -> ProviderSpec | None:
    """The provider a path or a `provider/model` name spells out; None for one Chowder does not know."""
    try:
        return PROVIDERS[ModelProvider(name)]
    except ValueError:
        return None


def provider_of_model(model: str) -> ModelProvider | None:
    """The provider a bare model name (`claude-…`, `gpt-…`) belongs to by its prefix; None when none matches."""
    lowered = model.lower()
    return next((spec.name for spec in PROVIDERS.values() if lowered.startswith(spec.model_prefixes)), None)
