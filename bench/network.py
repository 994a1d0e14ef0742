"""What the sandbox network costs: create→running, chat turns and the raw host→gateway hop, isolated vs not.

Each sandbox has a network namespace of its own (veth pair + nftables): the control plane reaches the gateway at
the sandbox end of the veth, the gateway reaches the model endpoint on 10.231.0.1. This runs one server
"isolated" (the default: own netns, bwrap, cgroups, own uid) and one with CHOWDER_SANDBOX_ISOLATION=none (plain
host processes on loopback), same code, alternating run by run, one gateway at a time, with the built-in dev
model. "none" also drops bwrap, cgroups and the per-sandbox uid, whose launch cost is ~2 ms (sandboxing.md): the
difference is the network's plus that. Also times HostNetwork attach/detach alone. Prints medians; not a test.

The whole bench re-runs itself in a network namespace of its own (no uplink, /sys remounted to show it): the
nftables table and bridge of sandbox networks are host-wide, so other control planes on the host (test suites)
would otherwise share them with the bench, each disturbing the other. Needs root.

    PYTHONPATH=src:. .venv/bin/python bench/network.py --runs 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # this checkout's code, not an installed one

from bench.servers import bench_servers

from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.sandbox.network import HostNetwork
from tests.e2e.harness import Server, create_running, free_port, require_runtime
from tests.factories import auth

MODEL = "claude-sonnet-4-20250514"
WARM_TURNS, HEALTH_GETS, ATTACHES = 10, 50, 20
SETTINGS = {"isolated": {}, "none": {"CHOWDER_SANDBOX_ISOLATION": "none"}}
METRICS = ("create_s", "cold_turn_s", "warm_turn_ms", "healthz_ms")
# Cgroup mounts kept aside while a fresh sysfs (this namespace's /sys/class/net) goes over /sys, then put back.
_OWN_NETWORK = (
    'd=$(mktemp -d) && mount --rbind /sys/fs/cgroup "$d" && mount -t sysfs sysfs /sys && '
    'mount --rbind "$d" /sys/fs/cgroup && umount -l "$d" && rmdir "$d" && ip link set lo up && exec "$@"'
)


def timed_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def turn(server: Server, key: str, instance_id: str) -> None:
    body = {"model": MODEL, "input": "ping"}
    response = server.client.post(f"/v1/instances/{instance_id}/responses", headers=auth(key), json=body)
    assert response.status_code == 200, response.text


def one_run(server: Server, key: str) -> dict[str, float]:
    client = server.client
    body, create_s = create_running(server, key)
    instance_id = body["id"]
    cold_turn_s = timed_ms(lambda: turn(server, key, instance_id)) / 1000
    warm = [timed_ms(lambda: turn(server, key, instance_id)) for _ in range(WARM_TURNS)]
    with httpx.Client(base_url=body["gateway_url"], timeout=10, trust_env=False) as gateway:  # one kept-alive conn
        assert gateway.get("/healthz").status_code == 200
        health = [timed_ms(lambda: gateway.get("/healthz").raise_for_status()) for _ in range(HEALTH_GETS)]
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    sandbox_dir = server.data_dir / "sandboxes" / sandbox_id_for(instance_id)
    deadline = time.monotonic() + 60
    while sandbox_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    medians = {"warm_turn_ms": statistics.median(warm), "healthz_ms": statistics.median(health)}
    return {"create_s": create_s, "cold_turn_s": cold_turn_s, **medians}


def attach_detach_ms() -> tuple[float, float]:
    """Medians of HostNetwork attach and detach (namespace, veth, nft elements), with no process inside."""
    network = HostNetwork(Settings().sandbox_subnet, free_port())
    assert network.problem is None, network.problem
    sandbox_id, index = "sb_benchnetwork", None
    attaches, detaches = [], []
    try:
        for _ in range(ATTACHES):
            started = time.perf_counter()
            index = network.attach(sandbox_id, None, "open").index
            attached = time.perf_counter()
            network.detach(sandbox_id, index)
            index = None
            attaches.append((attached - started) * 1000)
            detaches.append((time.perf_counter() - attached) * 1000)
    finally:
        network.detach(sandbox_id, index)
    return statistics.median(attaches), statistics.median(detaches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per setting")
    args = parser.parse_args()
    require_runtime()
    if os.environ.get("CHOWDER_BENCH_OWN_NETWORK") != "1":
        argv = ["unshare", "--net", "--mount", "--propagation", "slave", "sh", "-c", _OWN_NETWORK, "sh"]
        env = {**os.environ, "CHOWDER_BENCH_OWN_NETWORK": "1", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
        os.execvpe("unshare", [*argv, sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]], env)
    attach_ms, detach_ms = attach_detach_ms()
    with bench_servers(SETTINGS, CHOWDER_DEV_MODEL="1") as servers:
        results: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
        for run in range(args.runs):
            for label in list(servers) if run % 2 == 0 else list(reversed(servers)):  # neither always first
                results[label].append(one_run(*servers[label]))
                figures = ", ".join(f"{k} {v:.3g}" for k, v in results[label][-1].items())
                print(f"run {run + 1} {label}: {figures}", flush=True)
    print("\nmedians: isolated (own netns + bwrap + cgroups + uid) vs none (host loopback, none of those):")
    print(f"  {'':<14}{'isolated':>10}{'none':>10}{'isolated/none':>15}")
    for metric in METRICS:
        isolated = statistics.median(r[metric] for r in results["isolated"])
        none = statistics.median(r[metric] for r in results["none"])
        print(f"  {metric:<14}{isolated:>10.3g}{none:>10.3g}{isolated / none:>15.2f}")
    print(f"  {'attach_ms':<14}{attach_ms:>10.3g}{'-':>10}   (HostNetwork alone, median of {ATTACHES})")
    print(f"  {'detach_ms':<14}{detach_ms:>10.3g}{'-':>10}")


if __name__ == "__main__":
    main()
