"""Capacity across hosts, simulated: the lifecycle engine driving a fleet of instances over many nodes.

In one process: several engine workers (the real `Engine`: its reconcile loop, leases and state machine, each with
its own database engine) on the real database (SQLite in a temporary directory, or PostgreSQL), booting sandboxes
through a fake provider whose nodes take time to create, boot (20-35 s for a real gateway), stop and observe one,
and boot at most 3 at once (`bench/fleet_sim.py`). Provider latencies are multiplied by --time-scale; the engine's
cadence (lease, reconcile and liveness intervals) is not, nor its boot timeouts unless --scale-timeouts (then a
boot that takes longer than a timeout errors as it would at real latencies; the wait for a boot slot never counts).

Scenario 1, mass start: the instances are created at once (one transaction, records as the create use case makes
them); time until none is provisioning. Scenario 2, worker death: after a steady spell, one worker crashes (its
loop stops without releasing a lease) and the others must take over what it held. --start-running skips scenario
1 (all start out running). Statements are counted per second and per phase. Exits 1 if a worker ever acted on an
instance after another worker had begun working on it.

    .venv/bin/python -m bench.fleet                               # 10,000 instances, 50 nodes, 4 workers, SQLite
    scripts/with-postgres .venv/bin/python -m bench.fleet         # the same on PostgreSQL
    .venv/bin/python -m bench.fleet --instances 1000 --workers 2 --time-scale 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet_sim import (
    BOOT_S,
    NODE_BOOTS,
    Dead,
    FleetProvider,
    FleetRuntime,
    Spans,
    Statements,
    TracedEngine,
    Worker,
    WorkerTransactions,
)
from sqlalchemy import func, select

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.domain.instance_views import CreateRequest, new_instance_record
from chowder.domain.models import Power, Status, Tier
from chowder.domain.orgs import new_org_record
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.reconciler import MAX_PARALLEL_BOOTS
from chowder.persistence.db import Database, migrate
from chowder.persistence.store import SqlTransactions
from chowder.persistence.tables import Base, InstanceRow
from tests.fakes.runtime import RELEASE

DEFAULTS = Settings.model_fields


def _settled(seen: Census) -> int:
    return seen.by_status[Status.RUNNING] + seen.by_status[Status.ERROR]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


class LogCounts(logging.Handler):
    """The engine's warnings and errors, counted by message instead of printed (a crashed worker's excepted)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if not (record.exc_info and isinstance(record.exc_info[1], Dead)):
            self.counts[f"{record.levelname.lower()}: {record.msg}"] += 1


@dataclass
class Census:
    """The instances as the database holds them (read on a connection of its own, not counted)."""

    by_status: Counter[str]
    leased: int
    lapsed: int  # leases still held but expired: their holder failed to renew in time
    oldest_check_s: float  # age of the oldest liveness check of a running instance


def census(db: Database) -> tuple[Census, dict[str, str]]:
    """And who holds which lease."""
    now = utcnow()
    with db.session() as session:
        statuses = select(InstanceRow.status, func.count()).group_by(InstanceRow.status)
        by_status = Counter(dict(session.execute(statuses).all()))
        held = select(func.count()).where(InstanceRow.lease_owner.is_not(None))
        leased = session.scalar(held) or 0
        lapsed = session.scalar(held.where(InstanceRow.lease_expires_at < now)) or 0
        oldest: datetime | None = session.scalar(
            select(func.min(InstanceRow.observed_at)).where(InstanceRow.status == Status.RUNNING)
        )
        holders = select(InstanceRow.id, InstanceRow.lease_owner).where(InstanceRow.lease_owner.is_not(None))
        held_by = {instance_id: owner for instance_id, owner in session.execute(holders) if owner is not None}
    return Census(by_status, leased, lapsed, (now - oldest).total_seconds() if oldest else 0.0), held_by


@dataclass
class Phase:
    name: str
    started: float
    ended: float = 0.0
    steps: int = 0  # engine steps (one instance's claimed work) completed
    notes: list[str] = field(default_factory=list)
    history: list[tuple[float, Census]] = field(default_factory=list)

    def worst(self, figure: Callable[[Census], float]) -> float:
        return max((figure(seen) for _, seen in self.history), default=0.0)


class Fleet:
    def __init__(self, args: argparse.Namespace, url: str, data_dir: Path) -> None:
        self.args = args
        timeout_scale = args.time_scale if args.scale_timeouts else 1.0
        self.settings = Settings(
            data_dir=data_dir,
            database_url=url,
            provision_timeout_s=DEFAULTS["provision_timeout_s"].default * timeout_scale,
            start_timeout_s=DEFAULTS["start_timeout_s"].default * timeout_scale,
            stop_grace_s=DEFAULTS["stop_grace_s"].default * args.time_scale,
            reconcile_interval_s=args.reconcile_interval_s,
            observe_interval_s=args.observe_interval_s,
            lease_s=args.lease_s,
        )
        self.box = SecretBox("fleet bench")
        self.statements = Statements()
        self.spans = Spans()
        self.fleet = FleetProvider(args.nodes, args.time_scale, random.Random(args.seed), self.spans)
        self.runtime = FleetRuntime(self.fleet, args.time_scale)
        self.monitor = Database(url)
        self.api = Database(url)
        self.statements.attach(self.api.engine)
        self.dbs = [self.monitor, self.api]
        self.workers: list[Worker] = []
        for i in range(args.workers):
            db = Database(url)
            self.statements.attach(db.engine)
            self.dbs.append(db)
            tx = WorkerTransactions(SqlTransactions(db), self.spans)
            engine = TracedEngine(tx, self.box, self.settings, {self.fleet.name: self.fleet}, self.runtime, self.spans)
            self.workers.append(Worker(f"w{i}", tx, engine))
        self.phases: list[Phase] = []
        self._idle_leases: dict[str, float] = {}
        self.stray_leases: set[str] = set()

    def begin(self, name: str) -> Phase:
        if self.phases:
            self.end(self.phases[-1])
        self.statements.phase = name
        phase = Phase(name, time.monotonic(), steps=-self.spans.completed)
        self.phases.append(phase)
        return phase

    def end(self, phase: Phase) -> None:
        if not phase.ended:
            phase.ended = time.monotonic()
            phase.steps += self.spans.completed

    async def follow(self, phase: Phase, done: Callable[[Census], bool], limit_s: float) -> Census:
        """Reads the instances every second (printing them every 10 s) until `done` or `limit_s` passed."""
        last_print = phase.started
        while True:
            await asyncio.sleep(1.0)
            seen, held_by = await asyncio.to_thread(census, self.monitor)
            now = time.monotonic()
            phase.history.append((now, seen))
            self._find_stray_leases(held_by, now)
            if now - last_print >= 10:
                self.progress(phase, seen)
                last_print = now
            if done(seen) or now - phase.started >= limit_s:
                return seen

    def _find_stray_leases(self, held_by: dict[str, str], now: float) -> None:
        """Leases a live worker holds on an instance it is not working on, seen for 2 s and more."""
        names = {worker.engine.owner: worker.name for worker in self.workers if not worker.tx.dead}
        idle = {}
        for instance_id, owner in held_by.items():
            name = names.get(owner)
            if name is not None and name not in self.spans.active.get(instance_id, {}):
                idle[instance_id] = self._idle_leases.get(instance_id, now)
                if now - idle[instance_id] >= 2.0:
                    self.stray_leases.add(instance_id)
        self._idle_leases = idle

    def progress(self, phase: Phase, seen: Census) -> None:
        states = ", ".join(f"{status} {count}" for status, count in sorted(seen.by_status.items()))
        mean, _ = self.statements.rates(time.monotonic() - 5, time.monotonic())
        print(
            f"  {phase.name} +{time.monotonic() - phase.started:4.0f} s: {states}; leased {seen.leased} "
            f"({seen.lapsed} lapsed); booting {self.fleet.booting}; oldest liveness check {seen.oldest_check_s:.0f} s; "
            f"{mean:.0f} statements/s",
            flush=True,
        )

    async def run(self) -> None:
        for worker in self.workers:
            worker.start()
        await asyncio.sleep(1.0)  # orphan clean-up done, the loops idle
        await self.setup()
        if not self.args.start_running:
            await self.mass_start()
        await self.steady()
        await self.worker_death()
        self.end(self.phases[-1])

    async def setup(self) -> None:
        """Orgs and instances as signup and the create use case make them (in one transaction, so the engine finds
        all at once); with --start-running, as they are once booted, their gateways up and last checked at times
        spread over the liveness interval."""
        args = self.args
        phase = self.begin("setup")
        request = CreateRequest("agent", "anthropic", self.fleet.name, "v1", None, None)
        orgs = [replace(new_org_record(f"fleet org {i}"), subscription_tier=Tier.WHALE) for i in range(args.orgs)]
        instances = []
        rng, now = random.Random(args.seed), utcnow()
        for n in range(args.instances):
            record = new_instance_record(
                orgs[n % len(orgs)].id, request, self.fleet.name, RELEASE, None, self.box, None
            )
            record = replace(record, name=f"agent {n}")
            if args.start_running:
                sandbox_id = sandbox_id_for(record.id)
                self.fleet.left_running(sandbox_id)
                checked = now - timedelta(seconds=rng.uniform(0, args.observe_interval_s))
                gateway_url = f"http://{sandbox_id}.fleet:18789"
                record = replace(record, status=Status.RUNNING, sandbox_id=sandbox_id, gateway_url=gateway_url)
                record = replace(record, observed_at=checked)
            instances.append(record)
        for n in range(args.asleep):  # idle long enough to sleep: running, their gateways stopped
            record = new_instance_record(
                orgs[n % len(orgs)].id, request, self.fleet.name, RELEASE, None, self.box, None
            )
            sandbox_id = sandbox_id_for(record.id)
            self.fleet.left_stopped(sandbox_id)
            asleep = {"status": Status.RUNNING, "power": Power.ASLEEP, "sandbox_id": sandbox_id, "observed_at": now}
            instances.append(replace(record, name=f"asleep {n}", **asleep))

        def insert(uow: UnitOfWork) -> None:
            for org in orgs:
                uow.orgs.add(org)
            for instance in instances:
                uow.instances.add(instance)

        await asyncio.to_thread(SqlTransactions(self.api).run_sync, insert)
        state = "running" if args.start_running else "new"
        phase.notes.append(
            f"{args.instances} {state} and {args.asleep} asleep instances of {args.orgs} orgs inserted in one "
            "transaction"
        )

    async def mass_start(self) -> None:
        args = self.args
        committed = utcnow()
        phase = self.begin("mass start")
        for worker in self.workers:
            worker.engine.wake()  # as the create use case does
        await self.follow(phase, lambda seen: seen.by_status[Status.PROVISIONING] == 0, args.timeout_s)
        self.end(phase)
        rows = await asyncio.to_thread(self._outcomes)
        booted = [(changed - committed).total_seconds() for status, changed, _ in rows if status == Status.RUNNING]
        reasons = Counter(error.splitlines()[0] for status, _, error in rows if status == Status.ERROR and error)
        left = sum(1 for status, _, _ in rows if status == Status.PROVISIONING)
        duration = phase.ended - phase.started
        if left:
            recent = [(at, seen) for at, seen in phase.history if at >= phase.ended - 60]
            (first_at, first), (last_at, last) = recent[0], recent[-1]
            rate = (_settled(last) - _settled(first)) / max(last_at - first_at, 1e-9)
            eta = f"~{left / rate / 60:.0f} min more at the last minute's rate" if rate > 0 else "no progress"
            phase.notes.append(f"NOT CONVERGED after {duration:.0f} s: {left} still provisioning ({eta})")
        else:
            phase.notes.append(f"converged (none provisioning) after {duration:.1f} s")
        phase.notes.append(f"running {len(booted)}, error {sum(reasons.values())}")
        if booted:
            phase.notes.append(
                f"time to running from the commit (of those running): p50 {percentile(booted, 0.5):.1f} s, "
                f"p90 {percentile(booted, 0.9):.1f} s, p100 {max(booted):.1f} s; {len(booted) / duration:.1f} "
                f"instances/s; boot-bound ideal {MAX_PARALLEL_BOOTS * args.workers / self._boot_s():.1f}/s"
            )
        phase.notes.append(
            f"peak concurrent boots {self.fleet.peak_booting}; engine allows {MAX_PARALLEL_BOOTS} per worker "
            f"({MAX_PARALLEL_BOOTS * args.workers}), the nodes {NODE_BOOTS} each ({NODE_BOOTS * args.nodes})"
        )
        for reason, count in reasons.most_common(2):
            phase.notes.append(f"error x{count}: {reason}")

    def _boot_s(self) -> float:
        return sum(BOOT_S) / 2 * float(self.args.time_scale)

    def _outcomes(self) -> list[tuple[str, datetime, str | None]]:
        with self.monitor.session() as session:
            rows = session.execute(select(InstanceRow.status, InstanceRow.status_changed_at, InstanceRow.error_message))
            return [(status, changed, error) for status, changed, error in rows]

    async def steady(self) -> None:
        phase = self.begin("steady")
        seen = await self.follow(phase, lambda _: False, self.args.steady_s)
        self.end(phase)
        interval = self.args.observe_interval_s
        phase.notes.append(
            f"liveness checks due {seen.by_status[Status.RUNNING] / interval:.0f}/s; oldest check seen "
            f"{phase.worst(lambda seen: seen.oldest_check_s):.0f} s old (interval {interval:g} s)"
        )

    async def worker_death(self) -> None:
        victim = self.workers[0]
        phase = self.begin("worker death")
        await victim.crash(self.fleet, self.spans)
        await asyncio.sleep(0.2)  # statements already in a thread when it died land now
        held = await asyncio.to_thread(self._leases_of, victim.engine.owner)
        self.spans.watch(set(held), phase.started)
        remaining = [(until - utcnow()).total_seconds() for until in held.values()]
        limit = max(self.args.death_s, self.args.steady_s)

        def done(_: Census) -> bool:
            return all(self.spans.watched.values()) and time.monotonic() - phase.started >= self.args.steady_s

        seen = await self.follow(phase, done, limit)
        self.end(phase)
        taken_s = [s for s in self.spans.watched.values() if s]
        phase.notes.append(
            f"{victim.name} died holding {len(held)} leases (lapsing after {min(remaining, default=0):.1f}-"
            f"{max(remaining, default=0):.1f} s; lease {self.args.lease_s:g} s)"
        )
        if held:
            phase.notes.append(
                f"taken over and worked on: {len(taken_s)}/{len(held)}, after p50 {percentile(taken_s, 0.5):.1f} s, "
                f"p100 {max(taken_s, default=float('nan')):.1f} s"
            )
        phase.notes.append(
            f"running {seen.by_status[Status.RUNNING]}; oldest liveness check seen "
            f"{phase.worst(lambda seen: seen.oldest_check_s):.0f} s old with {len(self.workers) - 1} workers left"
        )

    def _leases_of(self, owner: str) -> dict[str, datetime]:
        with self.monitor.session() as session:
            rows = session.execute(
                select(InstanceRow.id, InstanceRow.lease_expires_at).where(InstanceRow.lease_owner == owner)
            )
            return {instance_id: until for instance_id, until in rows if until is not None}

    async def stop(self) -> None:
        self.statements.phase = "shutdown"
        for worker in self.workers:
            await worker.stop()

    def table_rows(self) -> list[tuple[str, int]]:
        with self.monitor.session() as session:
            return [
                (table.name, session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            ]

    def report(self, logs: LogCounts) -> None:
        args = self.args
        scheme = self.settings.resolved_database_url.split(":", 1)[0]
        boot_real = sum(BOOT_S) / 2
        timeouts = "scaled" if args.scale_timeouts else "unscaled"
        print(
            f"\nfleet: {args.instances} instances, {args.nodes} nodes ({NODE_BOOTS} boots at once each), "
            f"{args.workers} workers, {scheme}, time scale {args.time_scale:g} "
            f"(boot {boot_real * args.time_scale:.2f} s for {boot_real:.1f} s), "
            f"boot timeouts {timeouts}, "
            f"lease {args.lease_s:g} s, liveness every {args.observe_interval_s:g} s"
        )
        print(
            f"{'phase':<13}{'seconds':>8}{'steps/s':>8}{'stmts':>8}{'mean/s':>7}{'peak/s':>7}{'/step':>6}"
            f"{'lapsed':>7}  statements by kind (lapsed: most leases held past expiry)"
        )
        for phase in self.phases:
            duration = phase.ended - phase.started
            mean, peak = self.statements.rates(phase.started, phase.ended)
            kinds = {verb: n for (name, verb), n in self.statements.per_phase.items() if name == phase.name}
            total = sum(kinds.values())
            by_kind = " ".join(f"{verb} {n}" for verb, n in sorted(kinds.items(), key=lambda item: -item[1]))
            per_step = f"{total / phase.steps:6.1f}" if phase.steps else f"{'-':>6}"
            lapsed = phase.worst(lambda seen: seen.lapsed)
            print(
                f"{phase.name:<13}{duration:8.1f}{phase.steps / duration:8.1f}{total:8}{mean:7.0f}{peak:7}"
                f"{per_step}{lapsed:7.0f}  {by_kind}"
            )
        for phase in self.phases:
            for note in phase.notes:
                print(f"  {phase.name}: {note}")
        overlaps = self.spans.overlaps
        print(f"  instances acted on by two workers at once: {len(overlaps)}")
        for instance_id, (older, newer, age) in list(overlaps.items())[:3]:
            print(f"    {instance_id}: {older} still acting {age:.1f} s into its work after {newer} began")
        print(f"  leases held 2 s and more by a live worker not working on the instance: {len(self.stray_leases)}")
        print(f"  gateways launched over a running one: {self.fleet.relaunches}")
        claims = self.spans.claims
        outcomes = ("won", "lost", "renewed", "renewal refused")
        print(
            "  claims: "
            + ", ".join(f"{outcome} {claims[outcome]}" for outcome in outcomes)
            + f"; longest engine tick {self.spans.longest_tick_s():.1f} s"
        )
        print("  provider calls: " + ", ".join(f"{op} {n}" for op, n in self.fleet.ops.most_common()))
        print("  rows: " + ", ".join(f"{name} {count}" for name, count in self.table_rows()))
        for message, count in logs.counts.most_common(5):
            print(f"  engine log x{count}: {message}")


async def main_async(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=args.threads))
    loop.set_exception_handler(_quiet_dead)
    logs = LogCounts()
    chowder_log = logging.getLogger("chowder")
    chowder_log.addHandler(logs)
    chowder_log.propagate = False
    with tempfile.TemporaryDirectory(prefix="chowder-fleet-") as data_dir:
        url = args.database_url or os.environ.get("CHOWDER_TEST_DATABASE_URL") or f"sqlite:///{data_dir}/chowder.db"
        fleet = Fleet(args, url, Path(data_dir))
        try:
            await asyncio.to_thread(migrate, fleet.monitor.engine)
            if (await asyncio.to_thread(census, fleet.monitor))[0].by_status.total():
                print("the database already holds instances: give an empty one", file=sys.stderr)
                return 2
            await fleet.run()
        finally:
            await fleet.stop()
        fleet.report(logs)
        for db in fleet.dbs:
            db.dispose()
    return 1 if fleet.spans.overlaps else 0


def _quiet_dead(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if not isinstance(context.get("exception"), Dead):
        loop.default_exception_handler(context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--orgs", type=int, default=100, help="the instances are spread over this many orgs")
    parser.add_argument("--time-scale", type=float, default=0.01, help="multiplies every provider latency")
    parser.add_argument(
        "--scale-timeouts",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="scale the engine's boot timeouts with the latencies (they are set against real boot times)",
    )
    parser.add_argument(
        "--start-running",
        action="store_true",
        help="skip the mass start: the instances start out running, as after one that converged",
    )
    parser.add_argument("--asleep", type=int, default=0, help="more instances, running and asleep (auto_stop)")
    parser.add_argument("--database-url", help="default: $CHOWDER_TEST_DATABASE_URL, else SQLite in a temp dir")
    parser.add_argument("--lease-s", type=float, default=DEFAULTS["lease_s"].default)
    parser.add_argument("--observe-interval-s", type=float, default=DEFAULTS["observe_interval_s"].default)
    parser.add_argument("--reconcile-interval-s", type=float, default=DEFAULTS["reconcile_interval_s"].default)
    parser.add_argument("--steady-s", type=float, default=20.0, help="how long to watch all running before a death")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="longest wait for the mass start")
    parser.add_argument("--death-s", type=float, default=240.0, help="longest wait for the takeover after a death")
    parser.add_argument(
        "--threads",
        type=int,
        default=min(32, (os.cpu_count() or 1) + 4),
        help="threads the database work of all workers runs in (default: one process's default pool)",
    )
    parser.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
