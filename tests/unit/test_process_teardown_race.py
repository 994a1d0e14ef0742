"""A process sandbox's stop and destroy against a create, start or command still under way in a thread (isolation
off).

The engine gives up on a boot (a delete, a timeout) by cancelling the task that awaits the provider, but the thread
doing the provider's work runs on. A stop or destroy that overtakes it leaves what it makes behind: a gateway
running for an instance in `error`, a sandbox directory of a deleted one. End to end that is only hit by chance
(tests/e2e/test_failure_paths.py), so here the create or start is paused at a known point.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chowder.core.settings import Settings
from chowder.sandbox import process
from chowder.sandbox.base import LaunchSpec, Resources, SandboxSpec
from chowder.sandbox.process import ProcessProvider

SANDBOX_ID = "sb_0123456789abcdef0123"
SPEC = SandboxSpec(SANDBOX_ID, {}, Resources(memory_mb=256, cpus=1.0, pids=64))
# Long enough for an unsynchronised teardown to have finished: the paused work goes on only after it.
OVERTAKE_S = 0.5


class Pause:
    """Wraps a function so that a call waits, once it began, until `resume`."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function
        self.entered, self._resume = threading.Event(), threading.Event()
        self.results: list[Any] = []

    def __call__(self, *args: Any) -> Any:
        self.entered.set()
        self._resume.wait(10)
        self.results.append(self._function(*args))
        return self.results[-1]

    def resume(self) -> None:
        self._resume.set()


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ProcessProvider]:
    provider = ProcessProvider(Settings(data_dir=tmp_path, sandbox_isolation="none"))
    yield provider
    asyncio.run(provider.destroy(SANDBOX_ID))


def race(paused: Pause, work: Callable[[], object], teardown: Callable[[], object]) -> None:
    """`teardown` called while `work` is paused, then both run to their end."""
    worker = _in_thread(work)
    assert paused.entered.wait(10)
    tearing_down = _in_thread(teardown)
    tearing_down.join(OVERTAKE_S)
    paused.resume()
    worker.join(10)
    tearing_down.join(10)


def test_a_destroy_during_a_create_leaves_no_sandbox(
    provider: ProcessProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    paused = Pause(process.make_layout)
    monkeypatch.setattr(process, "make_layout", paused)
    race(paused, lambda: asyncio.run(provider.create(SPEC)), lambda: asyncio.run(provider.destroy(SANDBOX_ID)))
    assert not (tmp_path / "sandboxes" / SANDBOX_ID).exists()


def test_a_stop_during_a_start_leaves_no_process(provider: ProcessProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(provider.create(SPEC))
    paused = Pause(provider._trees.spawn)
    monkeypatch.setattr(provider._trees, "spawn", paused)
    launch = LaunchSpec(argv=("sleep", "60"), env={})
    race(
        paused,
        lambda: asyncio.run(provider.start(SANDBOX_ID, launch)),
        lambda: asyncio.run(provider.stop(SANDBOX_ID, 0)),
    )
    [(pid, _)] = paused.results
    assert _gone(pid), f"the process started during the stop runs on ({pid})"


def test_a_destroy_waits_for_a_command_being_set_up(provider: ProcessProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command's setup makes the sandbox's network namespace, cgroup and mount if missing: run after a destroy,
    it would leave them behind."""
    asyncio.run(provider.create(SPEC))
    paused = Pause(process.spawn_command)
    monkeypatch.setattr(process, "spawn_command", paused)
    order: list[str] = []

    def destroy() -> None:
        asyncio.run(provider.destroy(SANDBOX_ID))
        order.append("destroyed" if paused.results else "destroyed before the command was spawned")

    race(paused, lambda: asyncio.run(provider.exec(SANDBOX_ID, ["true"], {}, 10)), destroy)
    assert order == ["destroyed"]


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread
