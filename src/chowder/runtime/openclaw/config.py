"""Renders an instance's `openclaw.json`: the hardened base, the customer's overrides, then the keys the
control plane manages (port, auth, model routing, logging), which always win.

Secrets are never written here: the gateway token and the model credential reach the gateway through its
environment (`OPENCLAW_GATEWAY_TOKEN`, and an env SecretRef for the model providers)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chowder.core.merge_patch import merge_patch
from chowder.core.model_providers import ModelProvider
from chowder.runtime.openclaw.chat_inputs import MEDIA_LIMITS

GATEWAY_TOKEN_ENV = "OPENCLAW_GATEWAY_TOKEN"
MODEL_TOKEN_ENV = "CHOWDER_MODEL_TOKEN"
SYSTEM_PROMPT_PATH = ("agent", "system_prompt")

_MODEL_SECRET = {"source": "env", "provider": "default", "id": MODEL_TOKEN_ENV}


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A model declared on its provider, with what it takes. Our providers are custom ones to OpenClaw (they route
    through the model gateway), so its own catalog does not apply to them: a model not declared here is one the
    agent can pick only by name, taken as text-only (OpenClaw then leaves a turn's images out)."""

    id: str
    context_window: int
    max_tokens: int
    images: bool

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.id,
            "input": ["text", "image"] if self.images else ["text"],
            "contextWindow": self.context_window,
            "maxTokens": self.max_tokens,
        }


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """OpenClaw's `models.providers.<provider>` entry for one model provider (which it always reaches through the
    control plane's model gateway), and the model a new instance on that provider starts with."""

    # A new instance's model, as OpenClaw names it (`<provider>/<model>`).
    primary_model: str
    # OpenClaw's client for the provider's API.
    api: str
    # The provider's models in the catalog OpenClaw ships (`catalog.shipped_models`), under this plugin and id.
    catalog: tuple[str, str]
    # Appended to the provider's gateway route: OpenClaw's client adds its own paths after it.
    base_path: str = ""
    # Models the shipped catalog lacks.
    extra_models: tuple[CatalogModel, ...] = ()

    def provider_config(self, gateway_route: str, shipped: tuple[CatalogModel, ...]) -> dict[str, Any]:
        extra = {model.id for model in self.extra_models}
        models = [*(model for model in shipped if model.id not in extra), *self.extra_models]
        return {
            "baseUrl": gateway_route + self.base_path,
            "api": self.api,
            "apiKey": _MODEL_SECRET,
            "models": [model.entry() for model in models],
        }


PROVIDER_ENTRIES: Mapping[ModelProvider, ProviderEntry] = {
    ModelProvider.ANTHROPIC: ProviderEntry(
        "anthropic/claude-sonnet-4-5", "anthropic-messages", ("anthropic", "anthropic")
    ),
    ModelProvider.OPENAI: ProviderEntry("openai/gpt-4o", "openai-responses", ("openai", "openai"), base_path="/v1"),
    ModelProvider.GEMINI: ProviderEntry(
        "gemini/gemini-2.0-flash",
        "openai-completions",
        ("google", "google"),
        extra_models=(CatalogModel("gemini-2.0-flash", context_window=1_000_000, max_tokens=8192, images=True),),
    ),
}


@dataclass(frozen=True, slots=True)
class GatewayPlacement:
    """Where one gateway lives, as seen from inside its sandbox."""

    port: int
    # OpenClaw's bind mode: "lan" (every address) inside a network namespace of its own, else "loopback".
    bind: str
    state_dir: str
    log_file: str
    model_base_url: str
    # The official channel plugins in the shared runtime (read-only).
    plugins: tuple[ShippedPlugin, ...] = ()
    # The models OpenClaw's shipped catalog knows for each provider (`catalog.shipped_models`).
    models: Mapping[ModelProvider, tuple[CatalogModel, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShippedPlugin:
    """An official `@openclaw/<id>` package installed with the runtime, as OpenClaw records an npm install."""

    id: str
    version: str
    path: str

    def install_record(self) -> dict[str, str]:
        """What `openclaw plugins install @openclaw/<id>@<version>` records: OpenClaw grants a plugin its
        trusted APIs (state store, ingress queue) only with an official npm record whose path matches."""
        spec = f"@openclaw/{self.id}@{self.version}"
        return {
            "source": "npm",
            "spec": spec,
            "resolvedName": f"@openclaw/{self.id}",
            "resolvedVersion": self.version,
            "resolvedSpec": spec,
            "version": self.version,
            "installPath": self.path,
        }


def expand_dot_paths(overrides: dict[str, Any]) -> dict[str, Any]:
    """`{"a.b": 1}` and `{"a": {"b": 1}}` mean the same override; nested keys are expanded too."""
    result: dict[str, Any] = {}
    for key, value in overrides.items():
        node = result
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"openclaw_config key '{key}' conflicts with a non-object value")
        expanded = expand_dot_paths(value) if isinstance(value, dict) else value
        if isinstance(expanded, dict) and isinstance(node.get(leaf), dict):
            node[leaf] = merge_patch(node[leaf], expanded)
        else:
            node[leaf] = expanded
    return result


def split_system_prompt(config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """OpenClaw has no config key for standing instructions; `agent.system_prompt` is carried in AGENTS.md."""
    agent = config.get("agent")
    if not isinstance(agent, dict) or "system_prompt" not in agent:
        return config, None
    rest = copy.deepcopy(config)
    prompt = rest["agent"].pop("system_prompt")
    if not rest["agent"]:
        del rest["agent"]
    return rest, None if prompt is None else str(prompt)


def base_config(model_provider: str) -> dict[str, Any]:
    """Defaults of a new instance the customer may change (openclaw-runtime.md 3.1: no idle jobs, no browser);
    the switches that keep a gateway from phoning home are managed (`managed_config`)."""
    return {
        "gateway": {
            "mode": "local",
            "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
        },
        "models": {"mode": "merge"},
        "agents": {
            "defaults": {
                "model": {"primary": PROVIDER_ENTRIES[ModelProvider(model_provider)].primary_model},
                "skipBootstrap": True,
                "heartbeat": {"every": "0m"},
            }
        },
        "plugins": {"entries": {"memory-core": {"config": {"dreaming": {"enabled": False}}}}},
        "skills": {"workshop": {"autonomous": {"mode": "off"}}},
        "browser": {"enabled": False},
        # Client tools (a caller's function tools) stay in the model's tool list, as a Responses caller expects;
        # OpenClaw's own optional tools stay behind Tool Search, as by default.
        "tools": {"toolSearch": {"mode": "directory"}},
    }


def trusted_plugins(config: dict[str, Any], plugins: tuple[ShippedPlugin, ...]) -> dict[str, Any]:
    """Load path and install records for the shipped plugins this config trusts (`plugins.entries.<id>.enabled`)
    and only those: each installed plugin is loaded into every agent run and reload (seconds each on a small
    machine), and runs its state migrations at boot. Install records (a legacy key the gateway moves into its
    plugin index) make them official, which OpenClaw requires before a plugin may use its trusted APIs."""
    entries = (config.get("plugins") or {}).get("entries") or {}
    trusted = [plugin for plugin in plugins if (entries.get(plugin.id) or {}).get("enabled") is True]
    return {
        "load": {"paths": [plugin.path for plugin in trusted]},
        "installs": {plugin.id: plugin.install_record() for plugin in trusted},
    }


def managed_config(placement: GatewayPlacement, config: dict[str, Any]) -> dict[str, Any]:
    """Keys the control plane owns, for `config`; applied last on every render so no override can weaken them."""
    base = placement.model_base_url.rstrip("/")
    return {
        "gateway": {
            "mode": "local",
            "port": placement.port,
            "bind": placement.bind,
            "auth": {"mode": "token"},
            "controlUi": {"enabled": False},
            "terminal": {"enabled": False},
            "http": {"endpoints": {"responses": responses_endpoint()}},
        },
        "models": {
            "catalogRefresh": {"enabled": False},
            "providers": {
                provider.value: entry.provider_config(f"{base}/{provider.value}", placement.models.get(provider, ()))
                for provider, entry in PROVIDER_ENTRIES.items()
            },
        },
        "agents": {"defaults": {"workspace": f"{placement.state_dir}/workspace"}},
        # The control plane's fast path to the gateway (channel status, config patches), token-protected;
        # the channel plugins shipped with the runtime, so connecting a channel never installs anything.
        "plugins": {"entries": {"admin-http-rpc": {"enabled": True}}, **trusted_plugins(config, placement.plugins)},
        "discovery": {"mdns": {"mode": "off"}},
        "update": {"checkOnStart": False},
        "logging": {"file": placement.log_file},
    }


def responses_endpoint() -> dict[str, Any]:
    """The gateway's Responses endpoint, with the image and file limits the control plane checks before a turn
    reaches it (so both refuse the same things, and the control plane says why)."""
    return {
        "enabled": True,
        **{
            limits.kind: {"maxBytes": limits.max_bytes, "allowedMimes": list(limits.media_types)}
            for limits in MEDIA_LIMITS
        },
    }


MANAGED_PATHS: tuple[tuple[str, ...], ...] = (
    ("gateway", "mode"),
    ("gateway", "port"),
    ("gateway", "bind"),
    ("gateway", "auth"),
    ("gateway", "controlUi"),
    ("gateway", "terminal"),
    ("gateway", "http", "endpoints", "responses", "enabled"),
    *(
        ("gateway", "http", "endpoints", "responses", limits.kind, key)
        for limits in MEDIA_LIMITS
        for key in ("maxBytes", "allowedMimes")
    ),
    ("models", "catalogRefresh", "enabled"),
    *(("models", "providers", provider.value) for provider in ModelProvider),
    ("agents", "defaults", "workspace"),
    ("plugins", "entries", "admin-http-rpc"),
    ("plugins", "load", "paths"),
    ("plugins", "installs"),
    ("discovery", "mdns", "mode"),
    ("update", "checkOnStart"),
    ("logging", "file"),
)


def managed_conflicts(patch: dict[str, Any]) -> list[str]:
    """The dot paths of an (expanded) override that would set, or remove, a key the control plane owns."""
    conflicts = []
    for path in _paths(patch):
        for managed in MANAGED_PATHS:
            shorter = min(len(path), len(managed))
            if path[:shorter] == managed[:shorter]:
                conflicts.append(".".join(path))
                break
    return conflicts


def _paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Leaf paths; an empty object or a null counts as a leaf (it replaces or removes what is there)."""
    paths: list[tuple[str, ...]] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            paths.extend(_paths(value, (*prefix, key)))
        else:
            paths.append((*prefix, key))
    return paths


def render(model_provider: str, overrides: dict[str, Any], placement: GatewayPlacement) -> dict[str, Any]:
    """A new instance's whole file."""
    config, _ = split_system_prompt(expand_dot_paths(overrides))
    merged = merge_patch(base_config(model_provider), config)
    return merge_patch(merged, managed_config(placement, merged))


def reapply_managed(current: dict[str, Any], placement: GatewayPlacement) -> dict[str, Any]:
    """An existing file with the customer's and the gateway's own edits kept, and our keys enforced."""
    return merge_patch(current, managed_config(placement, current))


AGENTS_BEGIN = "<!-- chowder:system-prompt:begin -->"
AGENTS_END = "<!-- chowder:system-prompt:end -->"


def with_system_prompt(agents_md: str, prompt: str | None) -> str:
    """Replace (or remove, for None) the managed block in AGENTS.md, keeping the rest of the file."""
    before, _, rest = agents_md.partition(AGENTS_BEGIN)
    after = rest.partition(AGENTS_END)[2] if rest else ""
    kept = (before + after).strip("\n")
    if prompt is None:
        return kept + "\n" if kept else ""
    block = f"{AGENTS_BEGIN}\n# Standing instructions\n\n{prompt}\n{AGENTS_END}"
    return f"{block}\n\n{kept}\n" if kept else f"{block}\n"
