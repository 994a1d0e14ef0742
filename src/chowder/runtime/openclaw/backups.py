"""An instance's state as OpenClaw's own backup archive (`openclaw backup create`: a tar.gz of `manifest.json` and
`payload/`, its SQLite databases copied with SQLite's online backup API, never as raw files), made inside the
instance's sandbox by its CLI, with none of the instance's credentials in the command's environment.

A running gateway is quiesced first through its cooperative suspend fence (admin RPC `gateway.suspend.prepare` with
`drain`: new work is held off, work under way finishes, scheduled jobs pause), kept prepared while the archive is
made (prepared again every `_RENEW_S`; OpenClaw lets a fence lapse after two minutes) and resumed at once after,
before the archive is stored. OpenClaw refuses to write an archive inside the state dir it archives, so it is made
in the sandbox's home and moved into the state dir only to be read back through the provider, then deleted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from chowder.core.errors import ChowderError, NotFound, ProviderError
from chowder.core.settings import Settings
from chowder.domain.ports.runtime import GatewayAccess, InstanceRuntimeSpec
from chowder.runtime.openclaw import cli, rpc
from chowder.sandbox.base import ExecResult, FileStream, SandboxInfo, SandboxProvider

log = logging.getLogger("chowder.backups")

Cli = Callable[..., Awaitable[tuple[ExecResult, SandboxInfo]]]
# Where an archive waits, relative to the state dir, while the control plane reads it.
READ_BACK = ".chowder-backup-"
_POLL_S = 1.0
_RENEW_S = 30.0
_SHELL_TIMEOUT_S = 120.0


class OpenClawArchives:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, run_cli: Cli) -> None:
        self._http = http
        self._settings = settings
        self._cli = run_cli

    @contextlib.asynccontextmanager
    async def archive(
        self, provider: SandboxProvider, spec: InstanceRuntimeSpec, gateway: GatewayAccess | None, name: str
    ) -> AsyncIterator[FileStream]:
        info = await provider.info(spec.sandbox_id)
        made, kept = f"{info.home}/{name}.tar.gz", f"{READ_BACK}{name}.tar.gz"
        # What a run that died left (runs of one instance never overlap: they hold its lease), before it is archived.
        await _shell(
            provider, spec.sandbox_id, f'rm -f -- "$0"/{READ_BACK}*.tar.gz "$1"/bkp_*.tar.gz', info.root, info.home
        )
        try:
            async with self._quiesced(gateway, name) if gateway else contextlib.nullcontext():
                await self._create(provider, spec, made)
            await _shell(provider, spec.sandbox_id, 'mv -f -- "$0" "$1"', made, f"{info.root}/{kept}")
            stream = await provider.open_file(spec.sandbox_id, kept)
            try:
                yield stream
            finally:
                await stream.chunks.aclose()
        finally:
            await _shell(provider, spec.sandbox_id, 'rm -f -- "$0"', made)
            with contextlib.suppress(NotFound):
                await provider.delete_path(spec.sandbox_id, kept)

    async def _create(self, provider: SandboxProvider, spec: InstanceRuntimeSpec, output: str) -> None:
        args = ("backup", "create", "--output", output, "--json")
        result, _ = await self._cli(provider, spec, args, self._settings.backup_timeout_s, credentials=False)
        if result.exit_code != 0:
            raise ProviderError(f"openclaw backup create failed (exit {result.exit_code}): {cli.reason(result)}")

    @contextlib.asynccontextmanager
    async def _quiesced(self, gateway: GatewayAccess, request_id: str) -> AsyncIterator[None]:
        """The gateway with its work drained and new work held off, for the block; resumed after, whatever
        happened (a resume that fails is logged: the fence lapses by itself within two minutes)."""
        prepare = {"requestId": request_id, "terminalPolicy": "preserve", "drain": True}
        answer = await self._rpc(gateway, "gateway.suspend.prepare", prepare)
        suspension = answer.get("suspensionId")
        if not isinstance(suspension, str):
            raise ProviderError(f"The gateway could not be quiesced for a backup: {_blockers(answer)}")
        try:
            await self._drained(gateway, suspension, answer)
            renewal = asyncio.create_task(self._renew(gateway, prepare))
            try:
                yield
            finally:
                renewal.cancel()
        finally:
            try:
                await self._rpc(gateway, "gateway.suspend.resume", {"suspensionId": suspension})
            except ChowderError as exc:
                log.warning("could not resume the gateway after a backup (its fence lapses by itself): %s", exc)

    async def _drained(self, gateway: GatewayAccess, suspension: str, answer: dict[str, Any]) -> None:
        limit = self._settings.backup_quiesce_timeout_s
        deadline = asyncio.get_running_loop().time() + limit
        while answer.get("status") != "ready":
            if asyncio.get_running_loop().time() > deadline:
                raise ProviderError(f"The gateway's work did not finish within {limit:.0f} s: {_blockers(answer)}")
            await asyncio.sleep(_POLL_S)
            answer = await self._rpc(gateway, "gateway.suspend.status", {"suspensionId": suspension})

    async def _renew(self, gateway: GatewayAccess, prepare: dict[str, Any]) -> None:
        while True:
            await asyncio.sleep(_RENEW_S)
            try:
                await self._rpc(gateway, "gateway.suspend.prepare", prepare)
            except ChowderError as exc:
                log.warning("could not renew a gateway's backup fence: %s", exc)

    async def _rpc(self, gateway: GatewayAccess, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await rpc.call(self._http, gateway.url, gateway.token, method, params)


def _blockers(answer: dict[str, Any]) -> str:
    blockers = answer.get("blockers") or []
    said = "; ".join(str(b.get("message", b)) for b in blockers if isinstance(b, dict))
    return said or str(answer.get("reason") or answer.get("status") or answer)


async def _shell(provider: SandboxProvider, sandbox_id: str, script: str, *args: str) -> None:
    """A coreutils step in the sandbox (every provider's image has /bin/sh); ProviderError when it fails."""
    argv = ["/bin/sh", "-c", script, *args]
    result = await provider.exec(sandbox_id, argv, {"PATH": "/usr/bin:/bin"}, _SHELL_TIMEOUT_S)
    if result.exit_code != 0:
        raise ProviderError(f"{script.split()[0]} in the sandbox failed: {(result.stderr or result.stdout)[-500:]}")
