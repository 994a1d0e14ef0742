"""Boot and memory levers, each beside the same instance without it, in one run: create → running (the warm-up turn
included), and the gateway tree's RSS and PSS once idle.

A lever is an `openclaw_config` an instance is created with (OpenClaw unmodified: configuration only); "default"
is what Chowder gives every instance now. The settings alternate run by run on one server (`process` provider,
dev model), one gateway at a time. Medians; not a test. Needs root.

    .venv/bin/python bench/levers.py --runs 3
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

from bench.servers import bench_servers
from bench.targets import tree_memory_mib

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import Server, require_runtime, sandbox_processes
from tests.factories import auth, create_instance

IDLE_SETTLE_S = 20
# Bundled plugins OpenClaw enables by default that an API-driven sandbox has no use for: companion devices and node
# hosts, voice, the browser (already switched off), client geolocation, model providers Chowder does not route.
NODE_AND_VOICE_PLUGINS = (
    "browser",
    "canvas",
    "cua-computer",
    "device-pair",
    "file-transfer",
    "geolocation",
    "linux-node",
    "ollama",
    "talk-voice",
    "xai",
)
LEVERS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "fewer plugins": {"plugins": {"entries": {plugin: {"enabled": False} for plugin in NODE_AND_VOICE_PLUGINS}}},
}


def one_run(server: Server, key: str, config: dict[str, Any] | None) -> dict[str, float]:
    started = time.monotonic()
    instance_id = create_instance(server.client, key, openclaw_config=config)["id"]
    body = server.wait_status(key, instance_id, {"running", "error"})
    assert body["status"] == "running", body["error_message"]
    create_s = time.monotonic() - started
    time.sleep(IDLE_SETTLE_S)
    rss, pss = tree_memory_mib(sandbox_processes(server.data_dir / "sandboxes" / sandbox_id_for(instance_id)))
    assert server.client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    time.sleep(3)
    return {"create_s": create_s, "rss_mib": rss, "pss_mib": pss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    require_runtime()
    results: dict[str, list[dict[str, float]]] = {label: [] for label in LEVERS}
    with bench_servers({"levers": {}}, CHOWDER_DEV_MODEL="1") as servers:
        server, key = servers["levers"]
        order = list(LEVERS)
        for run in range(args.runs):
            for label in order[run % len(order) :] + order[: run % len(order)]:
                results[label].append(one_run(server, key, LEVERS[label]))
                figures = ", ".join(f"{k} {v:.3g}" for k, v in results[label][-1].items())
                print(f"run {run + 1} {label}: {figures}", flush=True)
    print(f"\nmedians of {args.runs} runs:")
    for label, runs in results.items():
        print(f"  {label:<14}" + "".join(f"{m} {statistics.median(r[m] for r in runs):>8.3g}   " for m in runs[0]))


if __name__ == "__main__":
    main()
