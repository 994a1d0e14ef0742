"""OpenClaw's side of a backup on a real process sandbox, with the gateway's admin RPC and OpenClaw's CLI played by
the test: the suspend fence is prepared and drained before the archive is made, resumed after whatever happened,
the CLI runs without the instance's credentials, and nothing is left in the sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chowder.core.errors import ProviderError
from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.domain.ports.runtime import GatewayAccess, InstanceRuntimeSpec
from chowder.runtime.openclaw.backups import OpenClawArchives
from chowder.sandbox.base import ExecResult, Resources, SandboxInfo, SandboxProvider, SandboxSpec
from chowder.sandbox.process import ProcessProvider
from tests.conftest import SHARED_RUNTIME

GATEWAY = GatewayAccess("http://gateway.test", "gateway-token")
NAME = "bkp_00112233445566778899aabb"


class Gateway:
    """The admin RPC's suspend methods: draining for `drains` status calls (forever with None), then ready."""

    def __init__(self, calls: list[Any], drains: int | None = 1) -> None:
        self.calls = calls
        self.drains = drains

    def __call__(self, request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        self.calls.append(method)
        draining = {"status": "draining", "suspensionId": "s-1", "blockers": [{"message": "1 active request"}]}
        if method == "gateway.suspend.status" and self.drains is not None:
            self.drains -= 1
        if method == "gateway.suspend.resume":
            payload: dict[str, Any] = {"ok": True, "status": "running", "resumed": True}
        elif self.drains is None or self.drains > 0:
            payload = draining
        else:
            payload = {**draining, "status": "ready"}
        body = json.dumps({"ok": True, "payload": payload}).encode()
        return httpx.Response(200, stream=httpx.ByteStream(body))  # as the server streams it


@pytest.fixture
def sandbox(data_dir: Path) -> Iterator[tuple[Settings, ProcessProvider, InstanceRuntimeSpec]]:
    settings = Settings(data_dir=data_dir, runtime_dir=SHARED_RUNTIME, backup_quiesce_timeout_s=1.0)
    provider = ProcessProvider(settings)
    sandbox_id = sandbox_id_for("instance-1")
    asyncio.run(provider.create(SandboxSpec(sandbox_id, {}, Resources(memory_mb=256, cpus=0.5, pids=64))))
    spec = InstanceRuntimeSpec(
        "instance-1", "org-1", sandbox_id, "anthropic", "2026.9.6", {}, "open", "gateway-token", "model-token"
    )
    yield settings, provider, spec
    asyncio.run(provider.destroy(sandbox_id))


def _cli(calls: list[Any], exit_code: int = 0) -> Any:
    """OpenClaw's `backup create` as far as the archiver sees it: the archive written where it was asked for."""

    async def run(
        provider: SandboxProvider, spec: InstanceRuntimeSpec, args: tuple[str, ...], timeout_s: float, **options: Any
    ) -> tuple[ExecResult, SandboxInfo]:
        calls.append(("cli", args[:2], options))
        if exit_code == 0:
            Path(args[args.index("--output") + 1]).write_bytes(b"openclaw's archive")
        return ExecResult(exit_code, "", "Reason: no space left on device"), await provider.info(spec.sandbox_id)

    return run


def _archive(
    settings: Settings,
    provider: ProcessProvider,
    spec: InstanceRuntimeSpec,
    calls: list[Any],
    gateway: Gateway | None,
    cli_exit: int = 0,
) -> bytes:
    async def run() -> bytes:
        transport = httpx.MockTransport(gateway or Gateway(calls))
        async with httpx.AsyncClient(transport=transport) as http:
            archives = OpenClawArchives(http, settings, _cli(calls, cli_exit))
            async with archives.archive(provider, spec, GATEWAY if gateway else None, NAME) as stream:
                return b"".join([chunk async for chunk in stream.chunks])

    return asyncio.run(run())


def _left_behind(provider: ProcessProvider, spec: InstanceRuntimeSpec) -> list[str]:
    info = asyncio.run(provider.info(spec.sandbox_id))
    return [p.name for p in [*Path(info.root).iterdir(), *Path(info.home).iterdir()] if NAME in p.name]


def test_the_archive_is_made_inside_the_fence_without_credentials(sandbox: Any) -> None:
    settings, provider, spec = sandbox
    calls: list[Any] = []
    assert _archive(settings, provider, spec, calls, Gateway(calls)) == b"openclaw's archive"
    assert calls == [
        "gateway.suspend.prepare",
        "gateway.suspend.status",
        ("cli", ("backup", "create"), {"credentials": False}),
        "gateway.suspend.resume",
    ]
    assert _left_behind(provider, spec) == []


def test_the_gateway_is_resumed_when_the_archive_fails(sandbox: Any) -> None:
    settings, provider, spec = sandbox
    calls: list[Any] = []
    with pytest.raises(ProviderError, match=r"openclaw backup create failed \(exit 1\): no space left on device"):
        _archive(settings, provider, spec, calls, Gateway(calls, drains=0), cli_exit=1)
    assert calls[-1] == "gateway.suspend.resume"
    assert _left_behind(provider, spec) == []


def test_a_gateway_that_stays_busy_is_not_archived(sandbox: Any) -> None:
    settings, provider, spec = sandbox
    calls: list[Any] = []
    with pytest.raises(ProviderError, match="did not finish within 1 s: 1 active request"):
        _archive(settings, provider, spec, calls, Gateway(calls, drains=None))
    assert not any(isinstance(call, tuple) for call in calls)  # no CLI run
    assert calls[0] == "gateway.suspend.prepare" and calls[-1] == "gateway.suspend.resume"


def test_a_stopped_agent_is_archived_without_any_rpc(sandbox: Any) -> None:
    settings, provider, spec = sandbox
    calls: list[Any] = []
    assert _archive(settings, provider, spec, calls, None) == b"openclaw's archive"
    assert calls == [("cli", ("backup", "create"), {"credentials": False})]


def test_what_a_dead_run_left_is_removed_before_the_next_archive(sandbox: Any) -> None:
    """A run killed between its steps leaves an archive in the home or the state dir: never archived again."""
    settings, provider, spec = sandbox
    info = asyncio.run(provider.info(spec.sandbox_id))
    (Path(info.home) / "bkp_ffeeddccbbaa998877665544.tar.gz").write_bytes(b"old")
    (Path(info.root) / ".chowder-backup-bkp_ffeeddccbbaa998877665544.tar.gz").write_bytes(b"old")
    (Path(info.root) / "notes.md").write_text("kept")
    seen: list[str] = []

    async def run_cli(*args: Any, **options: Any) -> tuple[ExecResult, SandboxInfo]:
        command: tuple[str, ...] = args[2]
        seen.extend(sorted(p.name for p in [*Path(info.root).iterdir(), *Path(info.home).iterdir()]))
        Path(command[command.index("--output") + 1]).write_bytes(b"new")
        return ExecResult(0, "", ""), info

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            async with OpenClawArchives(http, settings, run_cli).archive(provider, spec, None, NAME) as stream:
                assert b"".join([chunk async for chunk in stream.chunks]) == b"new"

    asyncio.run(run())
    assert "notes.md" in seen and not [name for name in seen if name.endswith(".tar.gz")]
