"""Sleep and wake: what a chat costs on an instance that is awake, frozen or asleep, what each holds in memory, and
the bare gateway's restart and warm turn beside them, in one run.

One server on the `process` provider with the built-in dev model and `auto_stop` {2 s, 6 s}, and one "bare"
server (CHOWDER_SANDBOX_ISOLATION=none: OpenClaw's gateway as a plain host process, its warm turns sent straight to
it; its restart includes the control plane's warm-up turn, as every boot does). Figures: warm turn p50 (API), the
turn that thaws a frozen instance and the one that wakes an asleep one, the bare gateway's stop → start, and the
gateway tree's RSS and PSS awake, frozen and asleep. Medians; not a test. Needs root.

    .venv/bin/python bench/power.py --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # this checkout's code, not an installed one

from bench.providers import api_turn, direct_turn, timed_ms
from bench.servers import bench_servers, create_stop_start

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import Server, create_running, require_runtime, sandbox_processes
from tests.factories import auth

WARM_TURNS = 10
AUTO_STOP = {"CHOWDER_FREEZE_AFTER_S": "2", "CHOWDER_STOP_AFTER_S": "6"}
SETTINGS: dict[str, dict[str, str]] = {"bare": {"CHOWDER_SANDBOX_ISOLATION": "none"}, "sleepy": AUTO_STOP}


def tree_memory_mib(pids: list[int]) -> tuple[float, float]:
    """RSS and PSS of the processes, summed (smaps_rollup: PSS shares pages between them fairly)."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name == "Rss":
                    rss += int(value.split()[0])
                elif name == "Pss":
                    pss += int(value.split()[0])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def until_power(server: Server, key: str, instance_id: str, power: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while server.client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()["power"] != power:
        if time.monotonic() > deadline:
            raise AssertionError(f"never {power}")
        time.sleep(0.1)


def sleepy_run(server: Server, key: str) -> dict[str, float]:
    body, _ = create_running(server, key)
    instance_id = body["id"]
    sandbox_dir = server.data_dir / "sandboxes" / sandbox_id_for(instance_id)

    def turn() -> None:
        api_turn(server, key, instance_id)

    turn()  # the session's first turn
    warm = [timed_ms(turn) for _ in range(WARM_TURNS)]
    rss_awake, pss_awake = tree_memory_mib(sandbox_processes(sandbox_dir))
    until_power(server, key, instance_id, "frozen")
    rss_frozen, pss_frozen = tree_memory_mib(sandbox_processes(sandbox_dir))
    frozen_turn = timed_ms(turn)
    until_power(server, key, instance_id, "asleep")
    deadline = time.monotonic() + 30  # recorded asleep first, then stopped
    while sandbox_processes(sandbox_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    rss_asleep, _ = tree_memory_mib(sandbox_processes(sandbox_dir))
    asleep_turn = timed_ms(turn)
    assert server.client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    return {
        "warm_turn_ms": statistics.median(warm),
        "frozen_turn_ms": frozen_turn,
        "thaw_added_ms": frozen_turn - statistics.median(warm),
        "asleep_turn_s": asleep_turn / 1000,
        "rss_awake_mib": rss_awake,
        "pss_awake_mib": pss_awake,
        "rss_frozen_mib": rss_frozen,
        "pss_frozen_mib": pss_frozen,
        "rss_asleep_mib": rss_asleep,
    }


def bare_run(server: Server, key: str) -> dict[str, float]:
    body, _, start_s = create_stop_start(server, key)
    turn = direct_turn(server, body["id"], body["gateway_url"])
    turn()
    warm = [timed_ms(turn) for _ in range(WARM_TURNS)]
    assert server.client.delete(f"/v1/instances/{body['id']}", headers=auth(key)).status_code == 204
    return {"bare_warm_turn_ms": statistics.median(warm), "bare_restart_s": start_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    require_runtime()
    results: list[dict[str, Any]] = []
    with bench_servers(SETTINGS, CHOWDER_DEV_MODEL="1") as servers:
        for run in range(args.runs):
            figures = {**bare_run(*servers["bare"]), **sleepy_run(*servers["sleepy"])}
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()), flush=True)
            results.append(figures)
    medians = {name: statistics.median(r[name] for r in results) for name in results[0]}
    print(f"\nmedians of {args.runs} runs:")
    for name, value in medians.items():
        print(f"  {name:<20}{value:>10.3g}")
    print(f"  {'asleep/bare restart':<20}{medians['asleep_turn_s'] / medians['bare_restart_s']:>10.2f}")


if __name__ == "__main__":
    main()
