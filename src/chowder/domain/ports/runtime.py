"""The agent runtime port: what the engine and the use cases need of the agent inside a sandbox (OpenClaw)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chowder.sandbox.base import Egress, LaunchSpec, SandboxInfo, SandboxProvider, SandboxSpec


@dataclass(frozen=True, slots=True)
class InstanceRuntimeSpec:
    """Everything the agent runtime needs to lay out and launch one instance."""

    instance_id: str
    organization_id: str
    sandbox_id: str
    model_provider: str
    release: str
    overrides: dict[str, Any]
    egress: Egress
    gateway_token: str = field(repr=False)
    model_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class GatewayAccess:
    """Where a running agent's gateway listens, and its admin token (never shown to anyone)."""

    url: str
    token: str = field(repr=False)


class AgentRuntime(Protocol):
    """The agent that runs inside a sandbox (OpenClaw): how to install, configure, launch and probe it."""

    def resolve_version(self, requested: str) -> str:
        """The release an API `openclaw_version` (alias or exact) names; BadRequest listing the supported ones."""
        ...

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """`openclaw_config` as the runtime will merge it (dot paths expanded); BadRequest for what it refuses,
        such as keys the control plane manages."""
        ...

    async def ensure_installed(self, release: str) -> None: ...

    def sandbox_spec(self, spec: InstanceRuntimeSpec) -> SandboxSpec: ...

    async def prepare(
        self, provider: SandboxProvider, info: SandboxInfo, spec: InstanceRuntimeSpec, first_boot: bool
    ) -> LaunchSpec: ...

    async def wait_ready(self, provider: SandboxProvider, sandbox_id: str, timeout_s: float) -> str:
        """Return the endpoint once the agent admits traffic; raise ProviderError with the reason if not."""
        ...

    async def remember_good_config(self, provider: SandboxProvider, sandbox_id: str) -> None:
        """Keep the config a gateway just became ready with, to fall back on."""
        ...

    async def restore_last_good_config(self, provider: SandboxProvider, sandbox_id: str) -> bool:
        """Put the last good config back (the refused one is kept aside); False when there is none to try."""
        ...

    async def patch_config(self, spec: InstanceRuntimeSpec, gateway: GatewayAccess, patch: dict[str, Any]) -> bool:
        """Merge-patch the running agent's live config; it validates the result (ProviderError with its
        reasons when it refuses, and then nothing changed) and applies it before this returns. True when part
        of the change takes effect only after a restart."""
        ...

    async def apply_overrides(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        patch: dict[str, Any],
        overrides: dict[str, Any],
    ) -> bool:
        """Apply a merge patch of `openclaw_config` to a running gateway, which validates it; BadRequest
        with the gateway's reasons when it refuses (then nothing changed). True when a restart is needed."""
        ...

    async def write_overrides(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, patch: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        """Apply a merge patch of `openclaw_config` to an agent that is not running, validated by the runtime
        first (BadRequest with its reasons; nothing written)."""
        ...

    async def skills(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[dict[str, Any]]:
        """Every skill the agent knows, as the agent itself reports them."""
        ...

    async def skill(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, name: str) -> dict[str, Any]:
        """One skill in detail; NotFound when the agent does not know it."""
        ...

    async def install_skill(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, slug: str
    ) -> tuple[str, dict[str, Any]]:
        """Install from the skill registry; the installer's output and the skill as the agent now reports it.
        ProviderError with the installer's output when it fails."""
        ...

    async def configure_skill(
        self, spec: InstanceRuntimeSpec, gateway: GatewayAccess, key: str, changes: dict[str, Any]
    ) -> None:
        """Merge `changes` (enabled, apiKey, env, config) into the skill's live settings."""
        ...

    async def approve_pairing(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, channel: str, code: str
    ) -> str:
        """Approve a DM pairing code; the runtime's own words. NotFound for a code it has no request for."""
        ...

    def chat_request(
        self, gateway: GatewayAccess, session_id: str, model_ref: str, body: dict[str, Any]
    ) -> ChatRequest:
        """A Responses API request (`body`, its `model` the caller's) as the agent's gateway takes it, for one turn
        in `session_id` on the model `model_ref` (`provider/model`)."""
        ...

    def session_of_model_call(self, body: bytes) -> str | None:
        """The chat session a model call made by the agent belongs to, when the agent marked it in the request."""
        ...

    def user_words(self, text: str) -> str:
        """The user's own words in a user message of a model call made by the agent: what the agent wraps around
        them (timestamps, injected context, markers) removed. The dev model echoes them."""
        ...


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat turn addressed to an agent's gateway: POST `body` as JSON to `url` with `headers`."""

    url: str
    headers: dict[str, str] = field(repr=False)  # carries the gateway token
    body: dict[str, Any]
