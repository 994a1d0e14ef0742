"""Fault injection: the control plane SIGKILLed at random points of create, start, stop, delete and config apply,
restarted, and held to what a crash must never break. Shared by `tests/e2e/test_faults.py` (CI) and
`bench/faults.py` (the long run).

A round fires two or three operations at once on a small fleet of real gateways (an org key, the built-in dev
model), kills the server after a random delay within the slowest one's usual duration, and starts a new one on the
same data. Then, checked independently of the product's own view (its database read directly, /proc, the data dir,
/run/netns, the cgroup tree):
- every instance settles to a stable state matching its intent (running or stopped as desired; a deleted one torn
  down), none stuck in provisioning, none in error;
- what an answered request acknowledged holds (a 201'd create runs, a 200'd stop is stopped, a 204'd delete is
  gone, a 200'd config change is stored);
- no sandbox directory, process, network namespace or cgroup is left of a deleted instance, none runs for a
  stopped one, exactly one gateway listens for a running one, and no process under the data dir belongs to none;
- one instance's session keeps its history: every turn after a restart counts all the turns before it.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import BOOT_TIMEOUT_S, Server, gateway_pids, sandbox_processes
from tests.factories import auth, create_instance, output_text, signup

MODEL = "claude-sonnet-4-20250514"
SESSION = "faults"
FLEET = 3  # instances at most, so at most three gateways run
# How long each operation usually keeps the control plane busy here (s): the kill lands within the slowest's.
BUSY_S = {"create": 25.0, "start": 25.0, "stop": 4.0, "delete": 3.0, "config": 4.0}
SUCCESS = {"create": 201, "start": 200, "stop": 200, "delete": 204, "config": 200}


@dataclass(frozen=True)
class Outcome:
    operation: str
    instance_id: str | None  # None: a create that was not answered
    status: int | None  # None: killed before its answer
    mark: str = ""  # a config change's system prompt


@dataclass
class CampaignResult:
    kills: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    settle_s: list[float] = field(default_factory=list)
    turns: int = 0

    def summary(self) -> str:
        settle = sorted(self.settle_s)
        return (
            f"{self.kills} kills during {sum(self.operations.values())} operations "
            f"({', '.join(f'{n} {op}' for op, n in sorted(self.operations.items()))}; {self.unanswered} cut off "
            f"before their answer); settled after restart in median {statistics.median(settle):.1f} s, "
            f"max {settle[-1]:.1f} s; the kept session counted all {self.turns} turns"
        )


class FaultCampaign:
    """`restart` starts a new server on the same data dir and SQLite database (`data_dir / 'chowder.db'`), with
    the dev model on."""

    def __init__(self, restart: Callable[[], Server], data_dir: Path, rng: random.Random) -> None:
        self._restart = restart
        self._data_dir = data_dir
        self._rng = rng
        self.result = CampaignResult()
        self.server = restart()
        self._key = signup(self.server.client, "Faults", model_keys={})
        with sqlite3.connect(data_dir / "chowder.db") as db:  # granted by the operator: room for the fleet
            db.execute("UPDATE organizations SET subscription_tier = 'whale'")
        self._keeper = create_instance(self.server.client, self._key)["id"]
        self._settle([])
        self._chat()

    def run(self, operations: int, say: Callable[[str], None] = lambda _: None) -> CampaignResult:
        """Rounds until `operations` operations have been killed into."""
        while sum(self.result.operations.values()) < operations:
            outcomes = self._round()
            say(f"kill {self.result.kills}: {[(o.operation, o.status) for o in outcomes]}")
        return self.result

    def _round(self) -> list[Outcome]:
        plan = self._plan()
        with ThreadPoolExecutor(len(plan)) as pool:
            futures = [pool.submit(self._do, operation, instance_id) for operation, instance_id in plan]
            time.sleep(self._rng.uniform(0.0, max(BUSY_S[operation] for operation, _ in plan)))
            self.server.kill()
            outcomes = [future.result() for future in futures]
        self.result.kills += 1
        self.result.operations.update(operation for operation, _ in plan)
        self.result.unanswered += sum(outcome.status is None for outcome in outcomes)
        self.server = self._restart()
        self._settle(outcomes)
        if self._rows()[self._keeper][1] == "running":
            self._chat()
        return outcomes

    def _plan(self) -> list[tuple[str, str | None]]:
        """Two or three operations on distinct instances, each one its instance's state allows."""
        rows = {iid: row for iid, row in self._rows().items() if row[2] != "deleted"}
        choices: list[tuple[str, str | None]] = [("create", None)] if len(rows) < FLEET else []
        for instance_id, (_, status, _) in rows.items():
            moves = ["stop" if status == "running" else "start", "config"]
            choices += [(move, instance_id) for move in (moves if instance_id == self._keeper else [*moves, "delete"])]
        size = self._rng.choice((2, 3))
        plan: list[tuple[str, str | None]] = []
        for operation, instance_id in self._rng.sample(choices, len(choices)):
            if len(plan) < size and instance_id not in {i for _, i in plan if i}:
                plan.append((operation, instance_id))
        return plan

    def _do(self, operation: str, instance_id: str | None) -> Outcome:
        mark = f"fault-{self._rng.getrandbits(32):08x}" if operation == "config" else ""
        base = f"/v1/instances/{instance_id}"
        with httpx.Client(base_url=self.server.url, headers=auth(self._key), timeout=BOOT_TIMEOUT_S) as client:
            try:
                if operation == "create":
                    response = client.post("/v1/instances", json={"name": "fault"})
                    instance_id = response.json().get("id") if response.status_code == 201 else None
                elif operation == "delete":
                    response = client.delete(base)
                elif operation == "config":
                    response = client.patch(base, json={"openclaw_config": {"agent": {"system_prompt": mark}}})
                else:
                    response = client.post(f"{base}/{operation}")
            except httpx.TransportError:
                return Outcome(operation, instance_id, None, mark)
        assert response.status_code == SUCCESS[operation], f"{operation} {instance_id}: {response.text}"
        return Outcome(operation, instance_id, response.status_code, mark)

    def _rows(self) -> dict[str, tuple[str, str, str]]:
        """Each instance's (sandbox id, status, desired state), read from the database itself."""
        with sqlite3.connect(self._data_dir / "chowder.db") as db:
            rows = db.execute("SELECT id, sandbox_id, status, desired_state, error_message FROM instances").fetchall()
        errors = [row for row in rows if row[2] == "error"]
        assert not errors, f"an instance went to error: {errors}\n{self.server.log_text()[-4000:]}"
        return {row[0]: (row[1] or sandbox_id_for(row[0]), row[2], row[3]) for row in rows}

    def _settle(self, outcomes: list[Outcome]) -> None:
        """Waits until every instance is stable as its intent says, then checks the acknowledged outcomes and
        that nothing is orphaned."""
        began = time.monotonic()
        while unsettled := [iid for iid, row in self._rows().items() if not self._stable(*row)]:
            assert time.monotonic() - began < BOOT_TIMEOUT_S, f"stuck: {unsettled}\n{self.server.log_text()[-4000:]}"
            time.sleep(0.5)
        self.result.settle_s.append(time.monotonic() - began)
        rows = self._rows()
        for outcome in outcomes:
            if outcome.status is not None:
                self._check_acknowledged(outcome, rows)
        self._check_no_orphans(rows)

    def _stable(self, sandbox_id: str, status: str, desired: str) -> bool:
        if desired == "deleted":
            return status == "terminated" and not _leftovers(self._data_dir, sandbox_id)
        return status == desired

    def _check_acknowledged(self, outcome: Outcome, rows: dict[str, tuple[str, str, str]]) -> None:
        assert outcome.instance_id is not None
        _, status, desired = rows[outcome.instance_id]
        expected = {"create": "running", "start": "running", "stop": "stopped", "delete": "deleted"}
        if outcome.operation in expected:
            assert desired == expected[outcome.operation], f"{outcome} acknowledged, yet desired is {desired}"
            return
        body = self.server.client.get(f"/v1/instances/{outcome.instance_id}", headers=auth(self._key)).json()
        prompt = ((body.get("openclaw_config") or {}).get("agent") or {}).get("system_prompt")
        assert prompt == outcome.mark, f"{outcome} acknowledged, yet the config holds {prompt!r}"

    def _check_no_orphans(self, rows: dict[str, tuple[str, str, str]]) -> None:
        sandboxes = self._data_dir / "sandboxes"
        for instance_id, (sandbox_id, status, desired) in rows.items():
            processes = set(sandbox_processes(sandboxes / sandbox_id))
            if desired == "deleted" or status == "stopped":
                assert not processes, f"{instance_id} ({status}) still has processes {processes}"
            if status == "running":
                body = self.server.client.get(f"/v1/instances/{instance_id}", headers=auth(self._key)).json()
                assert len(gateway_pids(body["gateway_url"])) == 1, f"{instance_id}: not exactly one gateway"
        kept = {row[0] for row in rows.values() if row[2] != "deleted"}
        strays = _strays(sandboxes, kept)
        if strays:  # a gateway's child may start between two reads of /proc: an orphan is still there later
            time.sleep(2)
            strays &= _strays(sandboxes, kept)
        assert not strays, f"processes under the data dir that belong to no instance: {strays}"
        unknown = {entry.name for entry in sandboxes.glob("sb_*")} - kept
        assert not unknown, f"sandbox directories of no live instance: {unknown}"

    def _chat(self) -> None:
        """One turn on the kept instance's session: it must count every turn before it."""
        try:
            response = self.server.client.post(
                f"/v1/instances/{self._keeper}/session/{SESSION}/responses",
                headers=auth(self._key),
                json={"model": MODEL, "input": f"turn {self.result.turns + 1}"},
            )
        except httpx.TransportError as exc:
            raise AssertionError(
                f"no answer from the kept instance ({exc!r})\n{self.server.log_text()[-6000:]}"
            ) from exc
        assert response.status_code == 200, f"{response.text}\n{self.server.log_text()[-6000:]}"
        self.result.turns += 1
        text = output_text(response.json())
        assert f"turns={self.result.turns} " in text, f"history lost: {text!r} after {self.result.turns - 1} turns"


def _strays(sandboxes: Path, kept: set[str]) -> set[int]:
    """Processes in a sandbox's directory (not the provider's probe's, `.probe`) that is none of `kept`."""
    owned = set().union(*(sandbox_processes(sandboxes / sandbox_id) for sandbox_id in kept))
    return set(sandbox_processes(sandboxes / "sb_")) - owned


def _leftovers(data_dir: Path, sandbox_id: str) -> list[str]:
    """What of a sandbox is still on the host: its directory, processes, network namespace, cgroups."""
    directory = data_dir / "sandboxes" / sandbox_id
    found = [str(directory)] if directory.exists() else []
    found += [f"pid {pid}" for pid in sandbox_processes(directory)]
    netns = Path("/run/netns") / f"chowder-{sandbox_id}"
    found += [str(netns)] if netns.exists() else []
    cgroups = Path("/sys/fs/cgroup")
    return found + [str(path) for pattern in ("chowder/", "*/chowder/") for path in cgroups.glob(pattern + sandbox_id)]
