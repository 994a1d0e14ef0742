"""The density issue's targets in one run, beside the bare OpenClaw gateway started by this script.

- "bare": `bench/bare_gateway.py`, the gateway as a plain host process with the config an instance starts with:
  cold start and restart on kept state to `/readyz`, and its tree's RSS and PSS once idle.
- "cold": a server on the `process` provider without a pool: create → running, first turn after it, warm turn
  p50, stop → start → running, first turn after the start.
- "pooled": a server with `CHOWDER_WARM_POOL_SIZE=1` and `auto_stop` {10 s, 20 s}: create → running from the pool,
  first turn, warm turn p50, the gateway tree's RSS and PSS awake and frozen, the turn that thaws a frozen
  instance and the one that wakes an asleep one (stopped: the host has no swap), then, with swap (the host's, or a
  zram device made for the run), the tree's RSS and swap once paged out, zram's compressed size, and the turn
  that wakes it.

The built-in dev model answers every turn. One gateway boots at a time except the pool's refill. Medians and
ratios against bare; not a test. Needs root.

    .venv/bin/python bench/targets.py --runs 3
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # this checkout's code, not an installed one

from bench.bare_gateway import BareGateway
from bench.providers import api_turn, timed_ms
from bench.servers import bench_servers

from tests.e2e.harness import Server, create_running, require_runtime, sandbox_processes
from tests.e2e.swap import host_swap, summed_kib, swapped_and_resident_kib
from tests.factories import auth

WARM_TURNS = 10
ZRAM_STAT = Path("/sys/block/zram0/mm_stat")
IDLE_SETTLE_S = 15
POOL_WAIT_S = 300
SETTINGS: dict[str, dict[str, str]] = {
    "cold": {},
    # Frozen after 10 s: a gateway frozen within seconds of a turn is stopped mid-way through OpenClaw's work after
    # it (SQLite maintenance), which the turn that thaws it then waits for.
    "pooled": {"CHOWDER_WARM_POOL_SIZE": "1", "CHOWDER_FREEZE_AFTER_S": "10", "CHOWDER_STOP_AFTER_S": "20"},
}


def tree_memory_mib(pids: list[int]) -> tuple[float, float]:
    """RSS and PSS of the processes, summed (smaps_rollup: PSS shares pages between them fairly)."""
    rss, pss = summed_kib(pids, "smaps_rollup", ("Rss", "Pss"))
    return rss / 1024, pss / 1024


def until_power(server: Server, key: str, instance_id: str, power: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while server.client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()["power"] != power:
        if time.monotonic() > deadline:
            raise AssertionError(f"never {power}")
        time.sleep(0.1)


def delete(server: Server, key: str, body: dict[str, Any]) -> None:
    """Deleted, and its sandbox gone (its teardown would weigh on whatever the next run measures)."""
    assert server.client.delete(f"/v1/instances/{body['id']}", headers=auth(key)).status_code == 204
    sandbox_dir = server.data_dir / "sandboxes" / body["sandbox_id"]
    deadline = time.monotonic() + 60
    while sandbox_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def bare_run() -> dict[str, float]:
    gateway = BareGateway()
    try:
        cold_s = gateway.boot()
        time.sleep(IDLE_SETTLE_S)
        rss, pss = tree_memory_mib(gateway.pids())
        gateway.stop()
        restart_s = gateway.boot()
    finally:
        gateway.close()
    return {"bare_cold_s": cold_s, "bare_restart_s": restart_s, "bare_rss_mib": rss, "bare_pss_mib": pss}


def cold_run(server: Server, key: str) -> dict[str, float]:
    body, create_s = create_running(server, key)
    instance_id = body["id"]

    turn = partial(api_turn, server, key, instance_id)
    first_ms = timed_ms(turn)
    warm = statistics.median(timed_ms(turn) for _ in range(WARM_TURNS))
    assert server.client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key)).status_code == 200
    started = time.monotonic()
    response = server.client.post(f"/v1/instances/{instance_id}/start", headers=auth(key))
    assert response.status_code == 200 and response.json()["status"] == "running", response.text
    start_s = time.monotonic() - started
    first_after_start_ms = timed_ms(turn)
    delete(server, key, body)
    return {
        "cold_create_s": create_s,
        "cold_first_turn_ms": first_ms,
        "cold_warm_turn_ms": warm,
        "start_s": start_s,
        "first_turn_after_start_ms": first_after_start_ms,
    }


def pool_ready(server: Server, meanwhile: Callable[[], object] = lambda: None) -> None:
    """Waits for a ready member, calling `meanwhile` every few seconds."""
    deadline = time.monotonic() + POOL_WAIT_S
    while True:
        with sqlite3.connect(server.data_dir / "chowder.db") as db:
            if db.execute("SELECT count(*) FROM warm_gateways WHERE state = 'ready'").fetchone()[0]:
                return
        if time.monotonic() > deadline:
            raise AssertionError("the pool never filled")
        meanwhile()
        time.sleep(3)


def pooled_run(server: Server, key: str) -> dict[str, float]:
    pool_ready(server)
    body, create_s = create_running(server, key)
    instance_id = body["id"]
    sandbox_dir = server.data_dir / "sandboxes" / body["sandbox_id"]

    turn = partial(api_turn, server, key, instance_id)
    first_ms = timed_ms(turn)
    pool_ready(server, turn)  # the refill's boot would weigh on the turns measured next; the turns keep it awake
    warm = statistics.median(timed_ms(turn) for _ in range(WARM_TURNS))
    rss_awake, pss_awake = tree_memory_mib(sandbox_processes(sandbox_dir))
    until_power(server, key, instance_id, "frozen")
    rss_frozen, pss_frozen = tree_memory_mib(sandbox_processes(sandbox_dir))
    frozen_ms = timed_ms(turn)
    until_power(server, key, instance_id, "asleep")
    deadline = time.monotonic() + 30  # recorded asleep first, then stopped
    while sandbox_processes(sandbox_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    asleep_ms = timed_ms(turn)
    paged = paged_run(server, key, instance_id, sandbox_dir, turn)
    delete(server, key, body)
    return paged | {
        "pool_create_s": create_s,
        "pool_first_turn_ms": first_ms,
        "warm_turn_ms": warm,
        "frozen_turn_ms": frozen_ms,
        "thaw_added_ms": frozen_ms - warm,
        "asleep_turn_s": asleep_ms / 1000,
        "rss_awake_mib": rss_awake,
        "pss_awake_mib": pss_awake,
        "rss_frozen_mib": rss_frozen,
        "pss_frozen_mib": pss_frozen,
    }


def paged_run(
    server: Server, key: str, instance_id: str, sandbox_dir: Path, turn: Callable[[], object]
) -> dict[str, float]:
    """Asleep again, with swap this time: paged out instead of stopped."""
    with host_swap() as swap:
        if not swap:
            return {}
        until_power(server, key, instance_id, "asleep")
        pids = sandbox_processes(sandbox_dir)
        swapped, resident = swapped_and_resident_kib(pids)
        compressed = int(ZRAM_STAT.read_text().split()[1]) if ZRAM_STAT.exists() else 0
        paged_ms = timed_ms(turn)
    return {
        "paged_turn_ms": paged_ms,
        "rss_paged_mib": resident / 1024,
        "swap_paged_mib": swapped / 1024,
        "zram_compressed_mib": compressed / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    require_runtime()
    results: list[dict[str, float]] = []
    with bench_servers(SETTINGS, CHOWDER_DEV_MODEL="1") as servers:
        for run in range(args.runs):
            figures = {**bare_run(), **cold_run(*servers["cold"]), **pooled_run(*servers["pooled"])}
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()), flush=True)
            results.append(figures)
    m = {name: statistics.median(r[name] for r in results) for name in results[0]}
    print(f"\nmedians of {args.runs} runs (warm turns: median of {WARM_TURNS} per run):")
    for name, value in m.items():
        print(f"  {name:<28}{value:>10.3g}")
    print("\ntargets:")
    for label, value, unit, target in (
        ("wake from frozen, added to a warm turn", m["thaw_added_ms"], "ms", "<= 100 ms"),
        ("create -> running from the pool", m["pool_create_s"], "s", "<= 1 s"),
        ("cold create / bare cold start", m["cold_create_s"] / m["bare_cold_s"], "x", "<= 1.10"),
        ("start from stopped / bare restart", m["start_s"] / m["bare_restart_s"], "x", "<= 1.10"),
        ("wake from asleep / bare restart", m["asleep_turn_s"] / m["bare_restart_s"], "x", "<= 1.10"),
        ("wake from asleep, paged out", m.get("paged_turn_ms", float("nan")) / 1000, "s", "<= 2 s"),
        ("first turn after create / warm turn", m["cold_first_turn_ms"] / m["cold_warm_turn_ms"], "x", "<= 1.5"),
        ("first turn from the pool / warm turn", m["pool_first_turn_ms"] / m["warm_turn_ms"], "x", "<= 1.5"),
        ("first turn after start / warm turn", m["first_turn_after_start_ms"] / m["cold_warm_turn_ms"], "x", "<= 1.5"),
        ("awake PSS / bare PSS", m["pss_awake_mib"] / m["bare_pss_mib"], "x", "aim 0.5"),
    ):
        print(f"  {label:<40}{value:>9.2f} {unit:<3} (target {target})")


if __name__ == "__main__":
    main()
