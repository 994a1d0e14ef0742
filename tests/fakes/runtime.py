"""An agent runtime without an agent: the "gateway" is the fake provider's running flag and readiness is asking
the provider. Scriptable: readiness fails or hangs, and a config can be refused until the last good one is
restored, as OpenClaw refuses a config it cannot load."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from chowder.core.errors import BadRequest, ProviderError
from chowder.domain.ports.runtime import (
    ChannelSpec,
    ChannelStatus,
    ChatRequest,
    GatewayAccess,
    InstanceRuntimeSpec,
    LoginQr,
    Skill,
    SkillDetails,
)
from chowder.sandbox.base import LaunchSpec, Resources, SandboxInfo, SandboxProvider, SandboxSpec, SandboxState

RELEASE = "2026.1.1"
NEXT_RELEASE = "2026.2.2"  # the catalog's other release, to upgrade to


class FakeAgentRuntime:
    """What the engine asks of a runtime; the config, skill and pairing calls fail the test that makes them."""

    def __init__(self) -> None:
        self.installed: list[str] = []
        self.launched_tokens: list[str] = []
        self.warmed_up: list[str] = []
        # (member's sandbox, instance) of each warm gateway given to an instance.
        self.taken_over: list[tuple[str, str]] = []
        self._take_over_refused: str | None = None
        self._readiness_failure: str | None = None
        self._readiness_hangs = False
        self._config_refused: str | None = None
        # Restores: (sandbox, archive bytes, foreign) of each state put in place; a reason to refuse the next ones.
        self.restored: list[tuple[str, bytes, bool]] = []
        self._restore_refused: str | None = None
        self._restore_hangs = False
        # What keeps an idle instance awake: its enabled channels, its next scheduled job.
        self.enabled: frozenset[str] = frozenset()
        self.job_due: datetime | None = None
        # Upgrades: the release of each gateway launched; how a release is broken ("exits", "hangs", "warm_up").
        self.launched_releases: list[str] = []
        self.version_changes: list[bool] = []  # whether each launch was told it changes the release
        self._broken: dict[str, str] = {}

    # Scripting.

    def fail_readiness(self, reason: str) -> None:
        self._readiness_failure = reason

    def hang_readiness(self) -> None:
        self._readiness_hangs = True

    def refuse_config(self, reason: str) -> None:
        """The gateway refuses the current config (readiness fails with `reason`) until the last good one is back."""
        self._config_refused = reason

    def refuse_restore(self, reason: str) -> None:
        """Archives are refused (BadRequest with `reason`), as the real runtime refuses an unsafe one."""
        self._restore_refused = reason

    def refuse_take_over(self, reason: str) -> None:
        self._take_over_refused = reason

    def break_release(self, release: str, how: str) -> None:
        """Its gateway exits at launch, hangs there, or comes up but fails its warm-up turn."""
        self._broken[release] = how

    def heal(self) -> None:
        self._readiness_failure = None
        self._readiness_hangs = False
        self._restore_hangs = False
        self._broken.clear()

    # The runtime contract.

    def resolve_version(self, requested: str) -> str:
        return NEXT_RELEASE if requested == NEXT_RELEASE else RELEASE

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return overrides

    async def ensure_installed(self, release: str) -> None:
        self.installed.append(release)

    def sandbox_spec(self, spec: InstanceRuntimeSpec) -> SandboxSpec:
        return SandboxSpec(
            spec.sandbox_id,
            labels={"chowder.instance": spec.instance_id},
            resources=Resources(memory_mb=256, cpus=1.0, pids=64),
            egress=spec.egress,
        )

    async def prepare(
        self, provider: SandboxProvider, info: SandboxInfo, spec: InstanceRuntimeSpec, first_boot: bool
    ) -> LaunchSpec:
        self.launched_tokens.append(spec.gateway_token)
        self.launched_releases.append(spec.release)
        self.version_changes.append(spec.version_change)
        if self._broken.get(spec.release) == "exits":
            raise ProviderError(f"openclaw {spec.release} exited with status 1 before it became ready.")
        if self._broken.get(spec.release) == "hangs":
            await asyncio.Event().wait()
        return LaunchSpec(argv=("gateway",), env={"GATEWAY_TOKEN": spec.gateway_token})

    async def wait_ready(self, provider: SandboxProvider, sandbox_id: str, timeout_s: float) -> str:
        if self._readiness_hangs:
            await asyncio.Event().wait()
        if reason := self._readiness_failure or self._config_refused:
            raise ProviderError(reason)
        status = await provider.observe(sandbox_id)
        if status.state != SandboxState.RUNNING or status.endpoint is None:
            raise ProviderError("The gateway exited before it became ready.")
        return status.endpoint

    async def remember_good_config(self, provider: SandboxProvider, sandbox_id: str) -> None:
        pass

    async def restore_last_good_config(self, provider: SandboxProvider, sandbox_id: str) -> bool:
        refused, self._config_refused = self._config_refused, None
        return refused is not None

    async def enabled_channels(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> frozenset[str]:
        return self.enabled

    async def restore_state(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, archive: Path, *, foreign: bool
    ) -> None:
        """Fails the test's engine when the gateway is still running: a restore must only touch a stopped one."""
        if (await provider.observe(spec.sandbox_id)).state == SandboxState.RUNNING:
            raise ProviderError("state restored under a running gateway")
        if self._restore_refused:
            raise BadRequest(self._restore_refused)
        if self._restore_hangs:
            await asyncio.Event().wait()
        self.restored.append((spec.sandbox_id, archive.read_bytes(), foreign))

    def hang_restore(self) -> None:
        """The next restores never finish (a control plane that dies in the middle of one)."""
        self._restore_hangs = True

    async def take_over(
        self,
        provider: SandboxProvider,
        gateway: GatewayAccess,
        booted_as: InstanceRuntimeSpec,
        spec: InstanceRuntimeSpec,
    ) -> None:
        if self._take_over_refused:
            raise BadRequest(self._take_over_refused)
        self.taken_over.append((booted_as.sandbox_id, spec.instance_id))

    async def warm_up(self, gateway: GatewayAccess, spec: InstanceRuntimeSpec, session_id: str) -> None:
        if self._broken.get(spec.release) == "warm_up":
            raise ProviderError("The agent's turn failed: model call refused.")
        self.warmed_up.append(session_id)

    async def next_job_due(self, gateway: GatewayAccess) -> datetime | None:
        return self.job_due

    # Config, skills, channels and chat: the engine never calls them; a use-case test that does fails loudly.

    async def apply_overrides(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        patch: dict[str, Any],
        overrides: dict[str, Any],
    ) -> bool:
        raise NotImplementedError("the fake runtime has no config")

    async def write_overrides(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, patch: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        raise NotImplementedError("the fake runtime has no config")

    async def skills(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[Skill]:
        raise NotImplementedError("the fake runtime has no skills")

    async def skill(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, name: str) -> SkillDetails:
        raise NotImplementedError("the fake runtime has no skills")

    async def install_skill(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, slug: str
    ) -> tuple[str, SkillDetails]:
        raise NotImplementedError("the fake runtime has no skills")

    async def configure_skill(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        skill: SkillDetails,
        changes: dict[str, Any],
    ) -> None:
        raise NotImplementedError("the fake runtime has no skills")

    def channels(self) -> Mapping[str, ChannelSpec]:
        return {}

    async def channel_status(self, gateway: GatewayAccess, channel: ChannelSpec) -> ChannelStatus:
        raise NotImplementedError("the fake runtime has no channels")

    async def connect_channel(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        channel: ChannelSpec,
        fields: dict[str, Any],
    ) -> bool:
        raise NotImplementedError("the fake runtime has no channels")

    async def start_login(self, gateway: GatewayAccess, channel: ChannelSpec) -> LoginQr:
        raise NotImplementedError("the fake runtime has no channels")

    async def disconnect_channel(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, gateway: GatewayAccess, channel: ChannelSpec
    ) -> None:
        raise NotImplementedError("the fake runtime has no channels")

    async def approve_pairing(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, channel: str, code: str
    ) -> str:
        raise NotImplementedError("the fake runtime has no channels")

    def chat_request(
        self, gateway: GatewayAccess, session_id: str, model_ref: str, body: dict[str, Any]
    ) -> ChatRequest:
        raise NotImplementedError("the fake runtime has no chat")

    def session_of_model_call(self, body: bytes) -> str | None:
        return None

    def user_words(self, text: str) -> str:
        return text
