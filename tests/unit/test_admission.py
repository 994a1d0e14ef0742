"""Admission to boot: creates are taken round-robin across organizations; on a host without the memory for another
gateway an instance waits, provisioning with the reason shown, boots once there is room, and is `error` once its
provision timeout has passed (the engine on the fake provider, the host's /proc/meminfo a file)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from chowder.core.clock import utcnow
from chowder.domain.admission import HostMemory, fair_order
from chowder.domain.models import Status
from chowder.domain.ports.instances import PendingWork
from tests.fakes.engine_env import EngineEnv, running

pytestmark = pytest.mark.persistence


def _work(item: str, status: Status = Status.PROVISIONING) -> PendingWork:
    """`item`: the org's letter, then the order it came in."""
    return PendingWork(item, status, item[0], utcnow() + timedelta(seconds=int(item[1:])))


def test_boots_take_turns_across_organizations_other_work_first() -> None:
    pending = [_work(w) for w in ("a1", "a2", "a3", "a4", "b5", "c6", "b7")] + [_work("d8", Status.TERMINATED)]
    assert [w.id for w in fair_order(pending)] == ["d8", "a1", "b5", "c6", "a2", "b7", "a3", "a4"]


def _meminfo(path: Path, available_mib: int) -> Path:
    path.write_text(f"MemTotal: 24000000 kB\nMemAvailable: {available_mib * 1024} kB\n")
    return path


def test_the_host_holds_another_gateway_only_beside_those_booting(tmp_path: Path) -> None:
    memory = HostMemory(1536, _meminfo(tmp_path / "meminfo", 4000))
    assert memory.refusal(booting=0) is None and memory.refusal(booting=1) is None
    assert memory.refusal(booting=2) == (
        "Waiting for memory: the host has 4000 MiB available, 2 gateways starting; a gateway needs 1536 MiB "
        "(CHOWDER_BOOT_MEMORY_MB)."
    )
    assert HostMemory(0, tmp_path / "missing").refusal(booting=9) is None, "0: no check"


def test_a_create_waits_for_memory_then_boots(env: EngineEnv, tmp_path: Path) -> None:
    env.provider.local = True
    env.settings = env.settings.model_copy(update={"provision_timeout_s": 30.0})
    engine = env.engine()
    meminfo = _meminfo(tmp_path / "meminfo", 1000)
    engine.host_memory = HostMemory(1536, meminfo)
    instance = env.add()

    async def scenario() -> None:
        async with running(engine):
            await env.until(instance.id, lambda now: (now.error_message or "").startswith("Waiting for memory"))
            await asyncio.sleep(0.2)
            assert env.read(instance.id).status == Status.PROVISIONING and not env.provider.calls
            _meminfo(meminfo, 2000)
            await env.until_status(instance.id, Status.RUNNING)

    asyncio.run(scenario())
    assert env.read(instance.id).error_message is None, "the reason goes once it boots"


def test_a_create_that_never_finds_room_is_an_error_after_its_timeout(env: EngineEnv, tmp_path: Path) -> None:
    env.provider.local = True
    engine = env.engine()
    engine.host_memory = HostMemory(1536, _meminfo(tmp_path / "meminfo", 1000))
    instance = env.add()

    async def scenario() -> None:
        async with running(engine):
            await env.until(instance.id, lambda now: now.status == Status.ERROR, timeout_s=10)

    asyncio.run(scenario())
    failed = env.read(instance.id)
    assert (failed.error_message or "").startswith("Not booted: Waiting for memory: the host has 1000 MiB available")
    assert not env.provider.calls, "nothing was created"
