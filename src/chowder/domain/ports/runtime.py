"""The agent runtime port: what the engine and the use cases need of the agent inside a sandbox (OpenClaw)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

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
    # A release change the owner asked for (`domain/upgrades.py`): this boot may run a release older than the one that
    # last wrote the state (an intended downgrade); a boot that fails is rolled back onto the backup taken before.
    version_change: bool = False


@dataclass(frozen=True, slots=True)
class GatewayAccess:
    """Where a running agent's gateway listens, and its admin token (never shown to anyone)."""

    url: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A messaging channel an agent can connect, in the public API's terms: whether it connects with settings
    (a bot token and the like) or by an interactive login (a QR to scan), and the settings it requires
    (name: what to enter). The same for every instance, so reading it needs no key."""

    id: str
    connection_type: Literal["token", "interactive"]
    required_fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """A channel as the running agent reports it: switched on, actually connected to the service, and the
    account details the agent gives (in its own words, handed to the client as they are)."""

    enabled: bool
    connected: bool
    details: dict[str, object]


@dataclass(frozen=True, slots=True)
class LoginQr:
    """An interactive channel's login: the QR as a base64 PNG, the text it encodes, and the agent's words."""

    image_base64: str
    data: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Skill:
    """A skill as the agent lists it: ready to use, or still missing something (such as `missing_env`)."""

    name: str
    description: str
    source: str
    ready: bool
    missing_env: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SkillDetails(Skill):
    """One skill looked up by name. `path` is relative to the instance root (as the files API reads it) when the
    skill lives there, else where the agent has it; `settings_key` is what its settings are filed under (often
    its name, not always)."""

    path: str
    settings_key: str


class AgentLauncher(Protocol):
    """What the lifecycle engine needs of the agent inside a sandbox: install it, lay out and launch it, probe it,
    and fall back on its last good config."""

    async def ensure_installed(self, release: str) -> None: ...

    def resolve_version(self, requested: str) -> str:
        """The release an API `openclaw_version` (alias or exact) names; BadRequest listing the supported ones."""
        ...

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

    async def restore_state(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, archive: Path, *, foreign: bool
    ) -> None:
        """Replace the stopped agent's state with a backup archive's (a local file), then remove what the control
        plane owns in it; `foreign` (another instance's state) also removes its channels and their credentials.
        BadRequest naming what an untrusted archive holds that is refused (nothing changed); ProviderError when a
        step fails."""
        ...

    async def take_over(
        self,
        provider: SandboxProvider,
        gateway: GatewayAccess,
        booted_as: InstanceRuntimeSpec,
        spec: InstanceRuntimeSpec,
    ) -> None:
        """Give a running agent booted as `booted_as` (a warm pool member) the config of `spec`, live (a restart
        only where the agent needs one); BadRequest when the agent refuses it."""
        ...

    async def warm_up(self, gateway: GatewayAccess, spec: InstanceRuntimeSpec, session_id: str) -> None:
        """Runs a throwaway turn on `session_id` (whose model calls the control plane answers itself), so the
        agent's lazy first-run work is done before a user's first turn."""
        ...

    async def enabled_channels(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> frozenset[str]:
        """The ids of the channels the agent's current config switches on."""
        ...

    async def next_job_due(self, gateway: GatewayAccess) -> datetime | None:
        """When the running agent's next scheduled job is due, as the agent itself says; None when none is."""
        ...


class AgentRuntime(AgentLauncher, Protocol):
    """The agent that runs inside a sandbox (OpenClaw), as the use cases act on it: its versions and config,
    skills, channels, chat addressing and the marks it leaves on its model calls."""

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """`openclaw_config` as the runtime will merge it (dot paths expanded); BadRequest for what it refuses,
        such as keys the control plane manages."""
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

    async def skills(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[Skill]:
        """Every skill the agent knows, installed or not."""
        ...

    async def skill(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, name: str) -> SkillDetails:
        """One skill in detail; NotFound when the agent does not know it."""
        ...

    async def install_skill(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, slug: str
    ) -> tuple[str, SkillDetails]:
        """Install from the skill registry; the installer's output and the skill as the agent now reports it.
        ProviderError with the installer's output when it fails."""
        ...

    async def configure_skill(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        skill: SkillDetails,
        changes: dict[str, Any],
    ) -> None:
        """Merge-patch the skill's settings (`enabled`, `apiKey`, `env`, `config`, as the public API names them;
        null removes one), applied live. BadRequest with the agent's reasons when it refuses them."""
        ...

    def channels(self) -> Mapping[str, ChannelSpec]:
        """The channels an agent can connect, by id, in the order the API lists them."""
        ...

    async def channel_status(self, gateway: GatewayAccess, channel: ChannelSpec) -> ChannelStatus:
        """Asked of the running agent itself, not read from our records."""
        ...

    async def connect_channel(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        channel: ChannelSpec,
        fields: dict[str, Any],
    ) -> bool:
        """Switch the channel on with `fields` (the required fields by their public names, anything else passed
        as written), direct messages accepted only from paired senders; returns once the agent applied it.
        Unprocessable with the agent's reasons when it refuses the settings (then nothing changed). True when
        the channel works only after a restart of the agent."""
        ...

    async def start_login(self, gateway: GatewayAccess, channel: ChannelSpec) -> LoginQr:
        """An interactive channel's login QR, which exists only once the service answered the agent;
        ProviderError in the agent's words when it could not (e.g. no egress)."""
        ...

    async def disconnect_channel(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, gateway: GatewayAccess, channel: ChannelSpec
    ) -> None:
        """Switched off; its settings are kept, so connecting again needs none."""
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
        in `session_id` on the model `model_ref` (`provider/model`). BadRequest or PayloadTooLarge for inputs the
        gateway would refuse (a type, a size), naming the limit."""
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
