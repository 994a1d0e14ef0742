"""OpenClaw as the agent runtime: lays out an instance's state, launches and probes its gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

import httpx

from chowder.core.endpoints import MODEL_PATH
from chowder.core.errors import BadRequest, FileTooLarge, NotFound, ProviderError
from chowder.core.merge_patch import merge_patch
from chowder.core.settings import MIB, Settings
from chowder.domain.ports.runtime import GatewayAccess, InstanceRuntimeSpec
from chowder.runtime.openclaw import chat, model_calls, rpc
from chowder.runtime.openclaw import config as oc_config
from chowder.runtime.openclaw.installer import RuntimeCache
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

CONFIG_FILE = "openclaw.json"
LAST_GOOD_FILE = "openclaw.json.last-good"
REJECTED_FILE = "openclaw.json.rejected"
CANDIDATE_FILE = "openclaw.json.candidate"
AGENTS_FILE = "workspace/AGENTS.md"
GATEWAY_LOG = "logs/gateway.out"
_PROBE_EVERY_S = 0.5
# openclaw.json and AGENTS.md are kilobytes; the bound is what a tenant that makes them anything costs us.
_STATE_FILE_BYTES = 4 * MIB
# The last lines of a gateway that failed to start, for its error message; the log itself may be gigabytes.
_LOG_TAIL_BYTES = 64 * 1024
_CLI_TIMEOUT_S = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class OpenClawRuntime:
    # Chat goes straight to the gateway; these only spell OpenClaw's conventions and need no state.
    chat_request = staticmethod(chat.chat_request)
    session_of_model_call = staticmethod(model_calls.session_of_model_call)
    user_words = staticmethod(model_calls.user_words)

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self.cache = RuntimeCache(settings.resolved_runtime_dir)

    def resolve_version(self, requested: str) -> str:
        return resolve_release(requested).version

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Expanded to nested objects; keys the control plane owns (port, auth, model routing, hardening) are
        refused."""
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
        placement = oc_config.GatewayPlacement(
            port=info.app_port,
            bind="lan" if info.app_listens_on_all else "loopback",
            state_dir=info.root,
            log_file=f"{info.root}/logs/openclaw.log",
            model_base_url=f"{info.control_plane_url.rstrip('/')}{MODEL_PATH}",
            plugins=self._plugins(spec),
        )
        current = await read_config(provider, spec.sandbox_id)
        if current is None:
            rendered = oc_config.render(spec.model_provider, spec.overrides, placement)
            _, prompt = oc_config.split_system_prompt(spec.overrides)
            if prompt is not None:
                await self._write_system_prompt(provider, spec.sandbox_id, prompt)
        else:
            rendered = oc_config.reapply_managed(current, placement)
        await _write_json(provider, spec.sandbox_id, CONFIG_FILE, rendered)
        return LaunchSpec(argv=self._argv(spec, info), env=self._env(spec, info), log_file=GATEWAY_LOG)

    def _argv(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> tuple[str, ...]:
        entry = self.cache.entrypoint(RELEASES[spec.release])
        return (str(self.cache.node), str(entry), "gateway", "run", "--port", str(info.app_port))

    def _env(self, spec: InstanceRuntimeSpec, info: SandboxInfo) -> dict[str, str]:
        env = {
            "PATH": f"{self.cache.node.parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": info.home,
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "OPENCLAW_STATE_DIR": info.root,
            "OPENCLAW_CONFIG_PATH": f"{info.root}/{CONFIG_FILE}",
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_OFFLINE": "1",
            "DO_NOT_TRACK": "1",
            "CLAWHUB_DISABLE_TELEMETRY": "1",
            "MALLOC_ARENA_MAX": "2",
            oc_config.GATEWAY_TOKEN_ENV: spec.gateway_token,
            oc_config.MODEL_TOKEN_ENV: spec.model_token,
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
                    f"The gateway exited during start-up.{await self._last_words(provider, sandbox_id)}"
                )
            try:
                # Only the status counts: the body, which the gateway could make endless, is never read.
                async with self._http.stream("GET", f"{status.endpoint}/readyz", timeout=2.0) as response:
                    if response.status_code == 200:
                        return status.endpoint
            except httpx.HTTPError:
                pass
            await asyncio.sleep(_PROBE_EVERY_S)
        raise ProviderError(
            f"The gateway did not become ready within {timeout_s:.0f} s.{await self._last_words(provider, sandbox_id)}"
        )

    async def remember_good_config(self, provider: SandboxProvider, sandbox_id: str) -> None:
        current = await _read_state(provider, sandbox_id, CONFIG_FILE)
        if current is not None:
            await provider.write_file(sandbox_id, LAST_GOOD_FILE, current)

    async def restore_last_good_config(self, provider: SandboxProvider, sandbox_id: str) -> bool:
        """The refused file stays readable as `openclaw.json.rejected` (files API), to see what went wrong."""
        good = await _read_state(provider, sandbox_id, LAST_GOOD_FILE)
        if good is None:
            return False
        current = await _read_state(provider, sandbox_id, CONFIG_FILE)
        if current == good:
            return False
        if current is not None:
            await provider.write_file(sandbox_id, REJECTED_FILE, current)
        await provider.write_file(sandbox_id, CONFIG_FILE, good)
        return True

    async def patch_config(self, spec: InstanceRuntimeSpec, gateway: GatewayAccess, patch: dict[str, Any]) -> bool:
        """Through the gateway's own `config.patch`: validated with OpenClaw's schema (ConfigRefused with its
        reasons), answered once applied (hot reload, or a restart where a key needs one). True when the result
        trusts a shipped plugin the gateway has not loaded: OpenClaw takes a plugin's install record only at
        boot, so that change needs a restart (which `prepare` completes)."""
        after = await rpc.patch_config(self._http, gateway.url, gateway.token, patch)
        wanted = oc_config.trusted_plugins(after, self._plugins(spec))["load"]["paths"]
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
            try:
                restart = await self.patch_config(spec, gateway, config_patch)
            except rpc.ConfigRefused as exc:
                raise BadRequest(f"OpenClaw refused the configuration: {exc.detail}") from exc
        await self._apply_system_prompt(provider, spec.sandbox_id, patch, overrides)
        return restart

    async def write_overrides(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, patch: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        """`openclaw_config` for an instance that is not running: the merged file is checked by OpenClaw's own
        `config validate` inside the sandbox (~5 s) and written only if valid, so the next start uses it. An
        instance that never booted has no file yet: its overrides are rendered at first boot."""
        if (await provider.observe(spec.sandbox_id)).state == SandboxState.MISSING:
            return
        current = await read_config(provider, spec.sandbox_id)
        if current is None:
            return
        config_patch, _ = oc_config.split_system_prompt(patch)
        if config_patch:
            candidate = (json.dumps(merge_patch(current, config_patch), indent=2) + "\n").encode()
            await provider.write_file(spec.sandbox_id, CANDIDATE_FILE, candidate)
            try:
                result, _ = await self._cli(
                    provider, spec, ("config", "validate", "--json"), _CLI_TIMEOUT_S, config_file=CANDIDATE_FILE
                )
            finally:
                await provider.delete_path(spec.sandbox_id, CANDIDATE_FILE)
            _raise_unless_valid(result)
            await provider.write_file(spec.sandbox_id, CONFIG_FILE, candidate)
        await self._apply_system_prompt(provider, spec.sandbox_id, patch, overrides)

    async def skills(self, provider: SandboxProvider, spec: InstanceRuntimeSpec) -> list[dict[str, Any]]:
        listed, _ = await self._cli_json(provider, spec, "skills", "list", "--json")
        skills: list[dict[str, Any]] = listed.get("skills", [])
        return skills

    async def skill(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, name: str) -> dict[str, Any]:
        found, info = await self._cli_json(provider, spec, "skills", "info", name, "--json")
        if "name" not in found:
            raise NotFound(f"Skill '{name}' not found.")
        root = info.root.rstrip("/")
        base = str(found.get("baseDir", ""))
        # Inside the instance root: a path the files API understands; elsewhere (bundled): where it is.
        found["path"] = base[len(root) :] if base.startswith(root + "/") else base
        return found

    async def install_skill(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, slug: str
    ) -> tuple[str, dict[str, Any]]:
        """OpenClaw's ClawHub installer, into the workspace's `skills/`; the installer's output and the
        installed skill as the agent now reports it. ProviderError with the output when it fails (offline)."""
        result, _ = await self._cli(provider, spec, ("skills", "install", slug), self._settings.skill_install_timeout_s)
        output = _plain("\n".join(part for part in (result.stdout, result.stderr) if part.strip()))
        if result.exit_code != 0:
            raise ProviderError(f"Installing skill '{slug}' failed (exit {result.exit_code}): {output}")
        return output, await self.skill(provider, spec, slug.rsplit("/", 1)[-1])

    async def configure_skill(
        self, spec: InstanceRuntimeSpec, gateway: GatewayAccess, key: str, changes: dict[str, Any]
    ) -> None:
        """`skills.entries.<key>` merge-patched live (OpenClaw re-reads skills without a restart)."""
        try:
            await self.patch_config(spec, gateway, {"skills": {"entries": {key: changes}}})
        except rpc.ConfigRefused as exc:
            raise BadRequest(f"OpenClaw refused the skill settings: {exc.detail}") from exc

    async def approve_pairing(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, channel: str, code: str
    ) -> str:
        """OpenClaw's own `pairing approve`: its RPC approves only by an opaque request id, never by the code
        the user was shown. ~10 s of CLI start-up, acceptable for something done once per contact."""
        result, _ = await self._cli(provider, spec, ("pairing", "approve", channel, code), _CLI_TIMEOUT_S)
        if result.exit_code == 0:
            return _plain(result.stdout)
        reason = _cli_reason(result)
        if "No pending pairing request" in reason:
            raise NotFound(reason)
        raise ProviderError(f"openclaw pairing approve failed (exit {result.exit_code}): {reason}")

    async def _cli(
        self,
        provider: SandboxProvider,
        spec: InstanceRuntimeSpec,
        args: tuple[str, ...],
        timeout_s: float,
        config_file: str = CONFIG_FILE,
    ) -> tuple[ExecResult, SandboxInfo]:
        """One OpenClaw CLI call inside the sandbox (same uid, binds and limits as the gateway): seconds of
        Node start-up, so only for what the gateway's HTTP RPC does not offer, never on a hot path."""
        info = await provider.create(self.sandbox_spec(spec))
        entry = self.cache.entrypoint(RELEASES[spec.release])
        env = {**self._env(spec, info), "NO_COLOR": "1", "FORCE_COLOR": "0"}
        env["OPENCLAW_CONFIG_PATH"] = f"{info.root}/{config_file}"
        result = await provider.exec(spec.sandbox_id, [str(self.cache.node), str(entry), *args], env, timeout_s)
        return result, info

    async def _cli_json(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, *args: str
    ) -> tuple[dict[str, Any], SandboxInfo]:
        result, info = await self._cli(provider, spec, args, _CLI_TIMEOUT_S)
        try:
            parsed = json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise ProviderError(
                f"openclaw {' '.join(args)} failed (exit {result.exit_code}): {_cli_reason(result)}"
            ) from exc
        return (parsed if isinstance(parsed, dict) else {}), info

    def _plugins(self, spec: InstanceRuntimeSpec) -> tuple[oc_config.ShippedPlugin, ...]:
        release = RELEASES[spec.release]
        return tuple(
            oc_config.ShippedPlugin(name, version, str(self.cache.plugin_dir(release, name)))
            for name, version in release.plugins.items()
        )

    async def _apply_system_prompt(
        self, provider: SandboxProvider, sandbox_id: str, patch: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        """When the patch touches `agent.system_prompt`, the managed AGENTS.md block follows the merged value."""
        if "system_prompt" in (patch.get("agent") or {}):
            _, prompt = oc_config.split_system_prompt(overrides)
            await self._write_system_prompt(provider, sandbox_id, prompt)

    async def _write_system_prompt(self, provider: SandboxProvider, sandbox_id: str, prompt: str | None) -> None:
        existing = (await _read_state(provider, sandbox_id, AGENTS_FILE) or b"").decode()
        await provider.write_file(sandbox_id, AGENTS_FILE, oc_config.with_system_prompt(existing, prompt).encode())

    async def _last_words(self, provider: SandboxProvider, sandbox_id: str) -> str:
        try:
            tail = await _read_state(provider, sandbox_id, GATEWAY_LOG, max_bytes=_LOG_TAIL_BYTES, tail=True)
        except Exception:
            return ""
        lines = [line for line in (tail or b"").decode(errors="replace").splitlines() if line.strip()][-8:]
        return ("\nLast gateway output:\n" + "\n".join(lines)) if lines else ""


async def read_config(provider: SandboxProvider, sandbox_id: str) -> dict[str, Any] | None:
    """The instance's `openclaw.json` as it is now; None when there is none yet."""
    raw = await _read_state(provider, sandbox_id, CONFIG_FILE)
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProviderError(f"{CONFIG_FILE} is not valid JSON: {exc}") from exc
    return parsed if isinstance(parsed, dict) else None


async def _read_state(
    provider: SandboxProvider, sandbox_id: str, path: str, *, max_bytes: int = _STATE_FILE_BYTES, tail: bool = False
) -> bytes | None:
    """A file of the instance's state that the control plane reads itself; None when missing. The tenant may
    have put anything there: what is not a regular file of a sane size is a ProviderError naming the file."""
    try:
        return await provider.read_file(sandbox_id, path, max_bytes=max_bytes, tail=tail)
    except NotFound:
        return None
    except (BadRequest, FileTooLarge) as exc:
        raise ProviderError(f"Cannot read {path}: {exc.detail}") from exc


def _plain(text: str) -> str:
    """CLI output as a client should read it: no colour codes, no trailing blank lines."""
    return _ANSI.sub("", text).strip()


def _raise_unless_valid(result: ExecResult) -> None:
    """`openclaw config validate --json`: BadRequest listing each issue's path and message when invalid."""
    try:
        verdict = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        reason = _cli_reason(result)
        raise ProviderError(f"openclaw config validate failed (exit {result.exit_code}): {reason}") from exc
    if verdict.get("valid") is True:
        return
    issues = rpc.listed_issues(verdict.get("issues") or [])
    raise BadRequest(f"OpenClaw refused the configuration: {issues or verdict.get('error', verdict)}")


def _cli_reason(result: ExecResult) -> str:
    """Why a CLI call failed: OpenClaw's `Reason:` line when it gives one, else the tail of its output."""
    text = _plain(result.stderr or result.stdout)
    reasons = [line.split("Reason:", 1)[1].strip() for line in text.splitlines() if "Reason:" in line]
    return reasons[-1] if reasons else text[-1000:]


async def _write_json(provider: SandboxProvider, sandbox_id: str, path: str, data: dict[str, Any]) -> None:
    await provider.write_file(sandbox_id, path, (json.dumps(data, indent=2) + "\n").encode())
