"""OpenClaw as the agent runtime: lays out an instance's state, launches and probes its gateway, and acts on a
running one (its config, channels, skills and pairings). Every path and address it writes comes from the
sandbox provider's SandboxInfo: where the gateway listens, how it reaches the model endpoint, where the shared
runtime appears."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chowder.core.endpoints import MODEL_PATH
from chowder.core.errors import BadRequest, NotFound, ProviderError, Unprocessable
from chowder.core.merge_patch import diff_patch, merge_patch
from chowder.core.model_providers import ModelProvider
from chowder.core.settings import MIB, Settings
from chowder.domain.ports.runtime import (
    ChannelSpec,
    ChannelStatus,
    GatewayAccess,
    InstanceRuntimeSpec,
    LoginQr,
    Skill,
    SkillDetails,
)
from chowder.runtime.openclaw import channels as oc_channels
from chowder.runtime.openclaw import chat, cli, model_calls, restore, rpc, state_files
from chowder.runtime.openclaw import config as oc_config
from chowder.runtime.openclaw.backups import OpenClawArchives
from chowder.runtime.openclaw.catalog import shipped_models
from chowder.runtime.openclaw.channels import CATALOG, CHANNELS, connect_patch, disconnect_patch
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.sessions import OpenClawSessions
from chowder.runtime.openclaw.skills import details_of, skill_of
from chowder.runtime.openclaw.versions import RELEASES, resolve_release
from chowder.sandbox.base import (
    ExecResult,
    LaunchSpec,
    Resources,
    SandboxInfo,
    SandboxProvider,
    SandboxSpec,
    SandboxState,
)

log = logging.getLogger("chowder.runtime")

_PROBE_EVERY_S = 0.5


class OpenClawRuntime:
    # Chat goes straight to the gateway; these only spell OpenClaw's conventions and need no state.
    chat_request = staticmethod(chat.chat_request)
    session_of_model_call = staticmethod(model_calls.session_of_model_call)
    user_words = staticmethod(model_calls.user_words)

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self.cache = RuntimeCache(settings.resolved_runtime_dir)
        self.sessions = OpenClawSessions(self.cache)
        self.archives = OpenClawArchives(http, settings, self._cli)

    def resolve_version(self, requested: str) -> str:
        return resolve_release(requested).version

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Expanded to nested objects; keys the control plane owns (port, auth, model routing, hardening) refused."""
        try:
            expanded = oc_config.expand_dot_paths(overrides)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        if conflicts := oc_config.managed_conflicts(expanded):
            raise BadRequest(f"openclaw_config cannot set {', '.join(conflicts)}: managed by Chowder.")
        return expanded

    async def ensure_installed(self, release: str) -> None:
        if not self.cache.is_installed(RELEASES[release]):
            await asyncio.to_thread(self.cache.install, RELEASES[release], lambda line: log.info("%s", line))

    def sandbox_spec(self, spec: InstanceRuntimeSpec) -> SandboxSpec:
        return SandboxSpec(
            sandbox_id=spec.sandbox_id,
            labels={"instance_id": spec.instance_id, "organization_id": spec.organization_id},
            resources=Resources(
                memory_mb=self._settings.sandbox_memory_mb,
                cpus=self._settings.sandbox_cpus,
                pids=self._settings.sandbox_pids,
            ),
            read_only_paths=(self.cache.node_dir, self.cache.release_dir(RELEASES[spec.release])),
            egress=spec.egress,
        )

    async def prepare(
        self, provider: SandboxProvider, info: SandboxInfo, spec: InstanceRuntimeSpec, first_boot: bool
    ) -> LaunchSpec:
        """Write `openclaw.json` (fresh on first boot, managed keys re-applied after) and build the launch."""
        placement = self._placement(spec, info)
        current = await state_files.read_config(provider, spec.sandbox_id)
        if current is None:
            rendered = oc_config.render(spec.model_provider, spec.overrides, placement)
            _, prompt = oc_config.split_system_prompt(spec.overrides)
            if prompt is not None:
                await state_files.write_system_prompt(provider, spec.sandbox_id, prompt)
        else:
            rendered = oc_config.reapply_managed(current, placement)
        await state_files.write_json(provider, spec.sandbox_id, state_files.CONFIG_FILE, rendered)
        return LaunchSpec(argv=self._argv(spec, info), env=self._env(spec, info), log_file=state_files.GATEWAY_LOG)

    async def restore_state(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, archive: Path, *, foreign: bool
    ) -> None:
        """OpenClaw's own `backup restore` into a fresh dir (seeing no state), swapped in (`restore.py`); disk-bound."""
        run, limit = functools.partial(self._cli, provider, spec, stateless=True), self._settings.sandbox_disk_mb * MIB
        await restore.restore_state(
            provider, spec.sandbox_id, archive, foreign=foreign, max_unpacked=limit, node=self.cache.node, run=run
        )

    async def take_over(
        self,
        provider: SandboxProvider,
        gateway: GatewayAccess,
        booted_as: InstanceRuntimeSpec,
        spec: InstanceRuntimeSpec,
    ) -> None:
        """Only what the instance's rendering changes from the member's is patched, so whatever the gateway wrote
        into its own config since its boot stays."""
        info = await provider.info(spec.sandbox_id)
        placement = self._placement(spec, info)
        before = oc_config.render(booted_as.model_provider, booted_as.overrides, placement)
        if patch := diff_patch(before, oc_config.render(spec.model_provider, spec.overrides, placement)):
            with rpc.refused_as(BadRequest, "the configuration"):
                await self._patch_config(provider, spec, gateway, patch)
        _, prompt = oc_config.split_system_prompt(spec.overrides)
        if prompt is not None:
            await state_files.write_system_prompt(provider, spec.sandbox_id, prompt)
        await state_files.remember_good_config(provider, spec.sandbox_id)

    def _placement(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> oc_config.GatewayPlacement:
        return oc_config.GatewayPlacement(
            port=info.app_port,
            bind="lan" if info.listen == "all" else "loopback",
            state_dir=info.root,
            log_file=f"{info.root}/logs/openclaw.log",
            model_base_url=f"{info.model_endpoint_url.rstrip('/')}{MODEL_PATH}",
            plugins=self._plugins(spec, info),
            models=shipped_models(self.cache.package_dir(RELEASES[spec.release])),
        )

    def _argv(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> tuple[str, ...]:
        return (*self._openclaw(spec, info), "gateway", "run", "--port", str(info.app_port))

    def _openclaw(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> tuple[str, str]:
        """Node and OpenClaw's entry point where the sandbox shows the shared runtime."""
        return info.inside(self.cache.node), info.inside(self.cache.entrypoint(RELEASES[spec.release]))

    def _env(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> dict[str, str]:
        env = {
            "PATH": f"{info.inside(self.cache.node.parent)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": info.home,
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "OPENCLAW_STATE_DIR": info.root,
            "OPENCLAW_CONFIG_PATH": f"{info.root}/{state_files.CONFIG_FILE}",
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_OFFLINE": "1",
            "DO_NOT_TRACK": "1",
            "CLAWHUB_DISABLE_TELEMETRY": "1",
            "MALLOC_ARENA_MAX": "2",
            oc_config.GATEWAY_TOKEN_ENV: spec.gateway_token,
            oc_config.MODEL_TOKEN_ENV: spec.model_token,
            **({"OPENCLAW_ALLOW_OLDER_BINARY_DESTRUCTIVE_ACTIONS": "1"} if spec.version_change else {}),  # downgrades
        }
        if self._settings.clawhub_url:
            env["OPENCLAW_CLAWHUB_URL"] = self._settings.clawhub_url
        if self._settings.node_compile_cache:
            env["NODE_COMPILE_CACHE"] = f"{info.home}/.node-compile-cache"
        else:
            env["NODE_DISABLE_COMPILE_CACHE"] = "1"
        return env

    async def wait_ready(self, provider: SandboxProvider, sandbox_id: str, timeout_s: float) -> str:
        """Ready means `/readyz` answers 200; a gateway that exits first fails with its own last words."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = await provider.observe(sandbox_id)
            if status.state != SandboxState.RUNNING or status.endpoint is None:
                raise ProviderError(
                    f"The gateway exited during start-up.{await state_files.last_words(provider, sandbox_id)}"
                )
            try:
                # Only the status counts: the body, which the gateway could make endless, is never read.
                async with self._http.stream("GET", f"{status.endpoint}/readyz", timeout=2.0) as response:
                    if response.status_code == 200:
                        return status.endpoint
            except httpx.HTTPError:
                pass
            await asyncio.sleep(_PROBE_EVERY_S)
        last_words = await state_files.last_words(provider, sandbox_id)
        raise ProviderError(f"The gateway did not become ready within {timeout_s:.0f} s.{last_words}")

    async def remember_good_config(self, provider: SandboxProvider, sandbox_id: str) -> None:
        await state_files.remember_good_config(provider, sandbox_id)

    async def restore_last_good_config(self, provider: SandboxProvider, sandbox_id: str) -> bool:
        return await state_files.restore_last_good_config(provider, sandbox_id)

    async def _patch_config(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, gateway: GatewayAccess, patch: dict[str, Any]
    ) -> bool:
        """Through the gateway's own `config.patch`: validated with OpenClaw's schema (ConfigRefused with its
        reasons), answered once applied (hot reload, or a restart where a key needs one). True when the result
        trusts a shipped plugin the gateway has not loaded: OpenClaw takes a plugin's install record only at
        boot, so that change needs a restart (which `prepare` completes)."""
        info = await provider.info(spec.sandbox_id)
        after = await rpc.patch_config(self._http, gateway.url, gateway.token, patch)
        wanted = oc_config.trusted_plugins(after, self._plugins(spec, info))["load"]["paths"]
        loaded = ((after.get("plugins") or {}).get("load") or {}).get("paths") or []
        return not set(wanted) <= set(loaded)

    async def apply_overrides(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        patch: dict[str, Any],
        overrides: dict[str, Any],
    ) -> bool:
        """`openclaw_config` applied live; `agent.system_prompt` goes to AGENTS.md (OpenClaw has no key for it).
        True when the change needs a restart to take effect."""
        config_patch, _ = oc_config.split_system_prompt(patch)
        restart = False
        if config_patch:
            with rpc.refused_as(BadRequest, "the configuration"):
                restart = await self._patch_config(provider, spec, gateway, config_patch)
        await state_files.apply_system_prompt(provider, spec.sandbox_id, patch, overrides)
        return restart

    async def write_overrides(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, patch: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        """`openclaw_config` for an instance that is not running: the merged file is checked by OpenClaw's own
        `config validate` inside the sandbox (~5 s) and written only if valid, so the next start uses it. An
        instance that never booted has no file yet: its overrides are rendered at first boot."""
        if (await provider.observe(spec.sandbox_id)).state == SandboxState.MISSING:
            return
        current = await state_files.read_config(provider, spec.sandbox_id)
        if current is None:
            return
        config_patch, _ = oc_config.split_system_prompt(patch)
        if config_patch:
            candidate = (json.dumps(merge_patch(current, config_patch), indent=2) + "\n").encode()
            await provider.write_file(spec.sandbox_id, state_files.CANDIDATE_FILE, candidate)
            try:
                result, _ = await self._cli(
                    provider,
                    spec,
                    ("config", "validate", "--json"),
                    cli.TIMEOUT_S,
                    config_file=state_files.CANDIDATE_FILE,
                )
            finally:
                await provider.delete_path(spec.sandbox_id, state_files.CANDIDATE_FILE)
            cli.raise_unless_valid(result)
            await provider.write_file(spec.sandbox_id, state_files.CONFIG_FILE, candidate)
        await state_files.apply_system_prompt(provider, spec.sandbox_id, patch, overrides)

    async def skills(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[Skill]:
        listed, _ = await self._cli_json(provider, spec, "skills", "list", "--json")
        return [skill_of(skill) for skill in listed.get("skills", [])]

    async def skill(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, name: str) -> SkillDetails:
        found, info = await self._cli_json(provider, spec, "skills", "info", name, "--json")
        if "name" not in found:
            raise NotFound(f"Skill '{name}' not found.")
        return details_of(found, info.root)

    async def install_skill(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, slug: str
    ) -> tuple[str, SkillDetails]:
        """OpenClaw's ClawHub installer, into the workspace's `skills/`; the installer's output and the
        installed skill as the agent now reports it. ProviderError with the output when it fails (offline)."""
        result, _ = await self._cli(provider, spec, ("skills", "install", slug), self._settings.skill_install_timeout_s)
        output = cli.plain("\n".join(part for part in (result.stdout, result.stderr) if part.strip()))
        if result.exit_code != 0:
            raise ProviderError(f"Installing skill '{slug}' failed (exit {result.exit_code}): {output}")
        return output, await self.skill(provider, spec, slug.rsplit("/", 1)[-1])

    async def configure_skill(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        skill: SkillDetails,
        changes: dict[str, Any],
    ) -> None:
        """`skills.entries.<skillKey>` merge-patched live (OpenClaw re-reads skills without a restart)."""
        with rpc.refused_as(BadRequest, "the skill settings"):
            await self._patch_config(provider, spec, gateway, {"skills": {"entries": {skill.settings_key: changes}}})

    def channels(self) -> Mapping[str, ChannelSpec]:
        return CATALOG

    async def enabled_channels(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> frozenset[str]:
        """Read from `openclaw.json` as it is now (a plugin channel counts only once its plugin is trusted)."""
        config = await state_files.read_config(provider, spec.sandbox_id) or {}
        return frozenset(channel.id for channel in CHANNELS.values() if channel.enabled_in(config))

    async def warm_up(self, gateway: GatewayAccess, spec: InstanceRuntimeSpec, session_id: str) -> None:
        model_ref = oc_config.PROVIDER_ENTRIES[ModelProvider(spec.model_provider)].primary_model
        await chat.warm_up(self._http, gateway, model_ref, session_id)

    async def next_job_due(self, gateway: GatewayAccess) -> datetime | None:
        """Admin RPC `cron.status` (~0.1 s): the scheduler's own next wake, over every enabled timed job."""
        payload = await rpc.call(self._http, gateway.url, gateway.token, "cron.status", {})
        due_ms = payload.get("nextWakeAtMs")
        if not payload.get("enabled") or not isinstance(due_ms, int | float):
            return None
        return datetime.fromtimestamp(due_ms / 1000, UTC)

    async def channel_status(self, gateway: GatewayAccess, channel: ChannelSpec) -> ChannelStatus:
        return await oc_channels.live_status(self._http, gateway, channel.id)

    async def connect_channel(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        gateway: GatewayAccess,
        channel: ChannelSpec,
        fields: dict[str, Any],
    ) -> bool:
        """DM policy `pairing`, and a plugin channel's plugin trusted: its first connect needs a restart."""
        with rpc.refused_as(Unprocessable, "the channel settings"):
            return await self._patch_config(provider, spec, gateway, connect_patch(CHANNELS[channel.id], fields))

    async def start_login(self, gateway: GatewayAccess, channel: ChannelSpec) -> LoginQr:
        return await oc_channels.start_login(self._http, gateway, channel.id)

    async def disconnect_channel(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, gateway: GatewayAccess, channel: ChannelSpec
    ) -> None:
        """Its plugin stays trusted, so connecting again needs no restart."""
        await self._patch_config(provider, spec, gateway, disconnect_patch(CHANNELS[channel.id]))

    async def approve_pairing(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, channel: str, code: str
    ) -> str:
        """OpenClaw's own `pairing approve`: its RPC approves only by an opaque request id, never by the code
        the user was shown. ~10 s of CLI start-up, acceptable for something done once per contact."""
        result, _ = await self._cli(provider, spec, ("pairing", "approve", channel, code), cli.TIMEOUT_S)
        if result.exit_code == 0:
            return cli.plain(result.stdout)
        reason = cli.reason(result)
        if "No pending pairing request" in reason:
            raise NotFound(reason)
        raise ProviderError(f"openclaw pairing approve failed (exit {result.exit_code}): {reason}")

    async def _cli(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        args: tuple[str, ...],
        timeout_s: float,
        config_file: str = state_files.CONFIG_FILE,
        credentials: bool = True,
        stateless: bool = False,  # sees no state dir: an older release refuses a state a newer one migrated
    ) -> tuple[ExecResult, SandboxInfo]:
        """One OpenClaw CLI call inside the sandbox (same uid, binds and limits as the gateway): seconds of
        Node start-up, so only for what the gateway's HTTP RPC does not offer, never on a hot path."""
        info = await provider.info(spec.sandbox_id)
        env = {**self._env(spec, info), "NO_COLOR": "1", "FORCE_COLOR": "0"}
        if not credentials:
            del env[oc_config.GATEWAY_TOKEN_ENV], env[oc_config.MODEL_TOKEN_ENV]
        state = f"{info.home}/.no-state" if stateless else info.root
        env |= {"OPENCLAW_STATE_DIR": state, "OPENCLAW_CONFIG_PATH": f"{state}/{config_file}"}
        result = await provider.exec(spec.sandbox_id, [*self._openclaw(spec, info), *args], env, timeout_s)
        return result, info

    async def _cli_json(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, *args: str
    ) -> tuple[dict[str, Any], SandboxInfo]:
        result, info = await self._cli(provider, spec, args, cli.TIMEOUT_S)
        return cli.json_answer(result, " ".join(args)), info

    def _plugins(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> tuple[oc_config.ShippedPlugin, ...]:
        """The release's official channel plugins, where the sandbox shows them."""
        release = RELEASES[spec.release]
        return tuple(
            oc_config.ShippedPlugin(name, version, info.inside(self.cache.plugin_dir(release, name)))
            for name, version in release.plugins.items()
        )
