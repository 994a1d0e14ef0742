"""The simulated fleet `bench/fleet.py` drives: nodes that take time to create, boot, stop and observe a sandbox (a
fake provider), a runtime whose readiness is the node's boot finishing, engine workers that can crash, and the
bookkeeping the figures come from (statements per second, who works on which instance when)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import event

from chowder.core.crypto import SecretBox
from chowder.core.errors import ProviderError
from chowder.core.settings import Settings
from chowder.domain.ports.storage import Transactions, UnitOfWork
from chowder.domain.reconciler import Engine
from chowder.persistence.store import SqlTransactions
from chowder.sandbox.base import (
    LaunchSpec,
    Resources,
    SandboxInfo,
    SandboxProvider,
    SandboxSpec,
    SandboxState,
    SandboxStatus,
)
from tests.fakes.runtime import FakeAgentRuntime
from tests.fakes.sandbox import FakeSandboxProvider

T = TypeVar("T")

# Which worker the running code belongs to: every task an engine starts inherits it from the engine's loop.
WORKER: contextvars.ContextVar[str] = contextvars.ContextVar("fleet_worker", default="bench")
# Which instance it works on, inside the engine's work on one instance.
INSTANCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("fleet_instance", default=None)

# Provider latencies at time scale 1, in seconds, before each node's own speed and a ±20 % jitter.
CREATE_S = 0.05
SPAWN_S = 0.1  # `start` returns once the process is spawned; the gateway then boots
BOOT_S = (20.0, 35.0)  # a real OpenClaw gateway, spawn to /readyz
STOP_S = 1.0
DESTROY_S = 0.5
OBSERVE_S = 0.005
PROBE_EVERY_S = 0.5  # the OpenClaw runtime's /readyz polling period
NODE_BOOTS = 3  # boots a node runs at once; more wait for a slot


class Dead(Exception):
    """What a crashed worker's code meets at its next database or provider call: it acts no more."""


@dataclass
class Node:
    name: str
    speed: float  # this node's latency multiplier
    boots: asyncio.Semaphore
    sandboxes: int = 0
    booting: int = 0
    peak_booting: int = 0


@dataclass
class SimSandbox:
    spec: SandboxSpec
    node: Node
    process: Literal["none", "booting", "ready"] = "none"
    boot: asyncio.Task[None] | None = None


class FleetProvider(FakeSandboxProvider):
    """Sandboxes spread over nodes (each on the node holding fewest), shared by every worker as a cluster is."""

    name = "fleet"

    def __init__(self, nodes: int, time_scale: float, rng: random.Random, spans: Spans) -> None:
        super().__init__()
        self._spans = spans
        self.nodes = [Node(f"node-{i:02}", rng.uniform(0.8, 1.25), asyncio.Semaphore(NODE_BOOTS)) for i in range(nodes)]
        self.boxes: dict[str, SimSandbox] = {}
        self.dead: set[str] = set()
        self.ops: Counter[str] = Counter()
        self.relaunches = 0  # a start on a sandbox whose gateway was already up or booting
        self.booting = 0
        self.peak_booting = 0
        self._scale = time_scale
        self._rng = rng

    def left_running(self, sandbox_id: str) -> None:
        """A sandbox whose gateway was up before the run began, on the node holding fewest."""
        self._left(sandbox_id, "ready")

    def left_stopped(self, sandbox_id: str) -> None:
        """A sandbox created before the run began, its gateway stopped."""
        self._left(sandbox_id, "none")

    def _left(self, sandbox_id: str, process: Literal["none", "ready"]) -> None:
        node = min(self.nodes, key=lambda node: node.sandboxes)
        spec = SandboxSpec(sandbox_id, labels={}, resources=Resources(memory_mb=3072, cpus=2.0, pids=1024))
        self.boxes[sandbox_id] = SimSandbox(spec, node, process)
        node.sandboxes += 1

    def probe_ready(self, sandbox_id: str) -> bool:
        """The gateway's /readyz."""
        box = self.boxes.get(sandbox_id)
        return box is not None and box.process == "ready"

    async def _op(self, operation: str, node: Node, base_s: float) -> None:
        if WORKER.get() in self.dead:
            raise Dead(WORKER.get())
        self._spans.act()
        self.ops[operation] += 1
        await asyncio.sleep(base_s * node.speed * self._scale * self._rng.uniform(0.8, 1.2))
        if WORKER.get() in self.dead:
            raise Dead(WORKER.get())

    def _box(self, sandbox_id: str) -> SimSandbox:
        box = self.boxes.get(sandbox_id)
        if box is None:
            raise ProviderError(f"Sandbox {sandbox_id} does not exist.")
        return box

    async def create(self, spec: SandboxSpec) -> SandboxInfo:
        box = self.boxes.get(spec.sandbox_id)
        node = box.node if box is not None else min(self.nodes, key=lambda node: node.sandboxes)
        await self._op("create", node, CREATE_S)
        if spec.sandbox_id not in self.boxes:
            self.boxes[spec.sandbox_id] = SimSandbox(spec, node)
            node.sandboxes += 1
        return await self.info(spec.sandbox_id)

    async def info(self, sandbox_id: str) -> SandboxInfo:
        box = self._box(sandbox_id)
        return SandboxInfo(
            sandbox_id, f"/{box.node.name}/{sandbox_id}", "/home/agent", 18789, "all", "http://cp:8001", {}
        )

    async def start(self, sandbox_id: str, launch: LaunchSpec) -> None:
        box = self._box(sandbox_id)
        await self._op("start", box.node, SPAWN_S)
        if box.process != "none":
            self.relaunches += 1
            self._end_process(box)
        box.process = "booting"
        # The boot belongs to the node, not to the worker that launched it: it goes on if that worker dies.
        box.boot = asyncio.create_task(self._boot(box), context=contextvars.Context())

    async def _boot(self, box: SimSandbox) -> None:
        node = box.node
        async with node.boots:
            self.booting += 1
            node.booting += 1
            self.peak_booting = max(self.peak_booting, self.booting)
            node.peak_booting = max(node.peak_booting, node.booting)
            try:
                await asyncio.sleep(self._rng.uniform(*BOOT_S) * node.speed * self._scale)
                box.process = "ready"
            finally:
                self.booting -= 1
                node.booting -= 1

    def _end_process(self, box: SimSandbox) -> None:
        if box.boot is not None:
            box.boot.cancel()
        box.process = "none"

    async def stop(self, sandbox_id: str, grace_s: float) -> None:
        box = self.boxes.get(sandbox_id)
        if box is not None:
            await self._op("stop", box.node, STOP_S)
            self._end_process(box)

    async def destroy(self, sandbox_id: str) -> None:
        box = self.boxes.get(sandbox_id)
        if box is not None:
            await self._op("destroy", box.node, DESTROY_S)
            self._end_process(box)
            if self.boxes.pop(sandbox_id, None) is not None:
                box.node.sandboxes -= 1

    async def observe(self, sandbox_id: str) -> SandboxStatus:
        box = self.boxes.get(sandbox_id)
        if box is None:
            return SandboxStatus(SandboxState.MISSING)
        await self._op("observe", box.node, OBSERVE_S)
        if box.process == "none":
            return SandboxStatus(SandboxState.STOPPED, labels=box.spec.labels)
        return SandboxStatus(SandboxState.RUNNING, f"http://{sandbox_id}.{box.node.name}:18789", box.spec.labels)

    async def sandboxes(self) -> dict[str, SandboxStatus]:
        return {sandbox_id: await self.observe(sandbox_id) for sandbox_id in list(self.boxes)}


class FleetRuntime(FakeAgentRuntime):
    """Ready once the node finished booting the gateway, polled as the OpenClaw runtime polls /readyz."""

    def __init__(self, fleet: FleetProvider, time_scale: float) -> None:
        super().__init__()
        self._fleet = fleet
        self._probe_every_s = max(PROBE_EVERY_S * time_scale, 0.02)

    async def wait_ready(self, provider: SandboxProvider, sandbox_id: str, timeout_s: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            status = await provider.observe(sandbox_id)
            if status.state != SandboxState.RUNNING or status.endpoint is None:
                raise ProviderError("The gateway exited during start-up.")
            if self._fleet.probe_ready(sandbox_id):
                return status.endpoint
            await asyncio.sleep(self._probe_every_s)
        raise ProviderError(f"The gateway did not become ready within {timeout_s:.0f} s.")


class Statements:
    """Statements sent to the database (`before_cursor_execute` on each engine), per second and per phase."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.per_second: Counter[int] = Counter()
        self.per_phase: Counter[tuple[str, str]] = Counter()  # (phase, first keyword)
        self.phase = "setup"
        self._lock = threading.Lock()

    def attach(self, engine: SqlEngine) -> None:
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        second = int(time.monotonic() - self.started)
        verb = statement.lstrip().split(None, 1)[0].upper()
        with self._lock:
            self.per_second[second] += 1
            self.per_phase[(self.phase, verb)] += 1

    def rates(self, since: float, until: float) -> tuple[float, int]:
        """Mean and peak statements per second between two `time.monotonic()` readings (peak over whole seconds)."""
        first, last = int(since - self.started), int(until - self.started)
        with self._lock:
            total = sum(self.per_second[s] for s in range(first, last + 1))
            whole = [self.per_second[s] for s in range(first + 1, last)] or [total]
        return total / max(until - since, 1e-9), max(whole)


class Spans:
    """Who works on which instance: the engine's `_work`, from its lease claimed to released. A lease that failed
    to exclude shows as a worker still acting on an instance (a statement or a provider call) after another worker
    began working on it. (The other way round is no overlap: a worker's next step may begin once the previous
    holder's release committed, an instant before that holder's coroutine resumes.)"""

    def __init__(self) -> None:
        self.active: dict[str, dict[str, float]] = {}  # instance -> worker -> when its work began
        self.overlaps: dict[str, tuple[str, str, float]] = {}  # instance -> (older still acting, newer, older's age)
        self.watched: dict[str, float] = {}  # instance -> first end of a live worker's work after `watch`
        self.completed = 0
        self.claims: Counter[str] = Counter()  # won, lost (to another worker), renewed, renewal refused
        self._ticks: dict[str, float] = {}  # worker -> start of its tick under way
        self._longest_tick_s = 0.0
        self._watch_since = 0.0

    def enter(self, instance_id: str) -> None:
        self.active.setdefault(instance_id, {})[WORKER.get()] = time.monotonic()

    def act(self) -> None:
        """The current worker's work on the current instance sends a statement or calls the provider."""
        instance_id = INSTANCE.get()
        working = self.active.get(instance_id or "", {})
        me = WORKER.get()
        began = working.get(me)
        if instance_id is None or began is None or instance_id in self.overlaps:
            return
        for other, since in working.items():
            if other != me and since > began:
                self.overlaps[instance_id] = (me, other, time.monotonic() - began)

    def leave(self, instance_id: str, completed: bool) -> None:
        working = self.active.get(instance_id, {})
        working.pop(WORKER.get(), None)
        if not working:
            self.active.pop(instance_id, None)
        self.completed += completed
        if completed and instance_id in self.watched and not self.watched[instance_id]:
            self.watched[instance_id] = time.monotonic() - self._watch_since

    def drop(self, worker: str) -> None:
        """A dead worker acts no more."""
        for working in self.active.values():
            working.pop(worker, None)
        self._ticks.pop(worker, None)

    def tick(self, started: float | None) -> None:
        """The current worker's tick begins (`started`) or ends (None)."""
        if started is not None:
            self._ticks[WORKER.get()] = started
        elif (began := self._ticks.pop(WORKER.get(), None)) is not None:
            self._longest_tick_s = max(self._longest_tick_s, time.monotonic() - began)

    def longest_tick_s(self) -> float:
        """Of the ticks ended, and those under way."""
        now = time.monotonic()
        return max([self._longest_tick_s, *(now - began for began in self._ticks.values())])

    def watch(self, instance_ids: set[str], since: float) -> None:
        self._watch_since = since
        self.watched = dict.fromkeys(instance_ids, 0.0)


class TracedEngine(Engine):
    """The real engine, its work on each instance recorded in `spans`."""

    def __init__(
        self,
        transactions: Transactions,
        box: SecretBox,
        settings: Settings,
        providers: dict[str, SandboxProvider],
        runtime: FleetRuntime,
        spans: Spans,
    ) -> None:
        super().__init__(transactions, box, settings, providers, runtime)
        self._spans = spans

    async def tick(self) -> None:
        self._spans.tick(time.monotonic())
        try:
            await super().tick()
        finally:
            self._spans.tick(None)

    async def _claim(self, instance_id: str) -> bool:
        won = await super()._claim(instance_id)
        self._spans.claims["won" if won else "lost"] += 1
        return won

    async def _renew(self, instance_id: str) -> bool:
        renewed = await super()._renew(instance_id)
        self._spans.claims["renewed" if renewed else "renewal refused"] += 1
        return renewed

    async def _work(self, instance_id: str, claimed_at: float) -> None:
        INSTANCE.set(instance_id)  # this task's context, which the job and watcher tasks it starts copy
        self._spans.enter(instance_id)
        completed = False
        try:
            await super()._work(instance_id, claimed_at)
            completed = True
        finally:
            self._spans.leave(instance_id, completed)


class WorkerTransactions:
    """A worker's `Transactions`: its own database engine and pool, as a separate process has; once it is dead,
    nothing it does reaches the database (a lease it holds stays held until it lapses)."""

    def __init__(self, inner: SqlTransactions, spans: Spans) -> None:
        self._inner = inner
        self._spans = spans
        self.dead = False

    async def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        if self.dead:
            raise Dead()
        self._spans.act()
        result: T = await self._inner(work)
        return result


@dataclass
class Worker:
    name: str
    tx: WorkerTransactions
    engine: TracedEngine
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        context = contextvars.copy_context()
        context.run(WORKER.set, self.name)
        self.task = asyncio.create_task(self.engine.run(), name=f"fleet-{self.name}", context=context)

    async def crash(self, fleet: FleetProvider, spans: Spans) -> None:
        """Stops dead: no further statement or provider call, no lease released."""
        self.tx.dead = True
        fleet.dead.add(self.name)
        spans.drop(self.name)
        await self.stop()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Dead):
                await self.task
