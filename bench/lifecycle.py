"""Lifecycle figures for the real gateway: create→running, start-from-stopped, idle memory.

Runs one server per Node compile-cache setting and alternates between them run by run, so both are
measured side by side under the same load. Prints medians; not a pass/fail test.

    .venv/bin/python bench/lifecycle.py --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import bench_servers

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import Server, create_running, require_runtime, sandbox_processes
from tests.factories import auth

IDLE_SETTLE_S = 20


def tree_rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def one_run(server: Server, key: str) -> dict[str, float]:
    client = server.client
    body, create_s = create_running(server, key)
    instance_id = body["id"]
    time.sleep(IDLE_SETTLE_S)
    sandbox_dir = server.data_dir / "sandboxes" / sandbox_id_for(instance_id)
    rss = tree_rss_mib(sandbox_processes(sandbox_dir))
    assert client.post(f"/v1/instances/{instance_id}/stop", headers=auth(key)).status_code == 200
    started = time.monotonic()
    response = client.post(f"/v1/instances/{instance_id}/start", headers=auth(key))
    assert response.status_code == 200, response.text
    start_s = time.monotonic() - started
    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    deadline = time.monotonic() + 60
    while sandbox_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return {"create_s": create_s, "start_s": start_s, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per setting")
    args = parser.parse_args()
    require_runtime()
    settings = {"cache off": {"CHOWDER_NODE_COMPILE_CACHE": "0"}, "cache on": {"CHOWDER_NODE_COMPILE_CACHE": "1"}}
    with bench_servers(settings) as servers:
        results: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
        for run in range(args.runs):
            for label, (server, key) in servers.items():
                figures = one_run(server, key)
                results[label].append(figures)
                print(f"run {run + 1} {label}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    print("\nmedians (Node compile cache off vs on, interleaved runs):")
    for metric in ("create_s", "start_s", "rss_mib"):
        off = statistics.median(r[metric] for r in results["cache off"])
        on = statistics.median(r[metric] for r in results["cache on"])
        print(f"  {metric:<9} off {off:8.1f}   on {on:8.1f}   on/off {on / off:5.2f}")


if __name__ == "__main__":
    main()
