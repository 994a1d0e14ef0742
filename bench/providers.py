"""Sandbox providers side by side: create → running, start from stopped and warm chat turns, on `docker` and
`process` beside the bare gateway, in one run.

"bare" is OpenClaw's gateway as a plain host process on loopback (CHOWDER_SANDBOX_ISOLATION=none: no namespaces,
cgroups, uid or network of its own), started by the same control plane; its warm turns go straight to the gateway
(its own /v1/responses, its token), bypassing the control plane, so they are the gateway's own cost. `process` is
the default isolated provider, `docker` a container of a real engine (the tests' own dockerd unless DOCKER_HOST
is set; the gateway image built once). One gateway at a time, the three settings alternating run by run, the
built-in dev model. Prints medians and ratios against bare; not a test. Needs root.

    .venv/bin/python bench/providers.py --runs 3
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

from bench.proxy import gateway_token
from bench.servers import bench_servers, create_stop_start

from tests.conftest import SHARED_RUNTIME
from tests.docker_engine import docker_engine, gateway_image
from tests.e2e.harness import Server, require_runtime
from tests.factories import auth

MODEL = "claude-sonnet-4-20250514"
WARM_TURNS = 10
SETTINGS = {
    "bare": {"CHOWDER_SANDBOX_ISOLATION": "none"},
    "process": {},
    "docker": {"CHOWDER_SANDBOX_PROVIDER": "docker"},
}
METRICS = ("create_s", "start_s", "warm_turn_ms")


def timed_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def one_run(label: str, server: Server, key: str) -> dict[str, float]:
    body, create_s, start_s = create_stop_start(server, key)
    instance_id = body["id"]
    turn = direct_turn(server, instance_id, body["gateway_url"]) if label == "bare" else None
    turn = turn or (lambda: api_turn(server, key, instance_id))
    turn()  # the session's first turn
    warm = [timed_ms(turn) for _ in range(WARM_TURNS)]
    assert server.client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    return {"create_s": create_s, "start_s": start_s, "warm_turn_ms": statistics.median(warm)}


def api_turn(server: Server, key: str, instance_id: str) -> None:
    body = {"model": MODEL, "input": "ping"}
    response = server.client.post(f"/v1/instances/{instance_id}/session/bench/responses", headers=auth(key), json=body)
    assert response.status_code == 200, response.text


def direct_turn(server: Server, instance_id: str, gateway: str) -> Callable[[], None]:
    token = gateway_token(server.data_dir, instance_id)
    headers = {
        "Authorization": f"Bearer {token}",
        "x-openclaw-session-key": "bench",
        "x-openclaw-model": f"anthropic/{MODEL}",
    }
    client = httpx.Client(timeout=120, trust_env=False)

    def turn() -> None:
        response = client.post(f"{gateway}/v1/responses", headers=headers, json={"model": "openclaw", "input": "ping"})
        assert response.status_code == 200, response.text

    return turn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per setting")
    args = parser.parse_args()
    require_runtime()
    with docker_engine(ROOT) as url:
        gateway_image(url, SHARED_RUNTIME)
        os.environ["DOCKER_HOST"] = url
        with bench_servers(SETTINGS, CHOWDER_DEV_MODEL="1") as servers:
            results: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
            order = list(servers)
            for run in range(args.runs):
                for label in order[run % len(order) :] + order[: run % len(order)]:  # none always first
                    results[label].append(one_run(label, *servers[label]))
                    figures = ", ".join(f"{k} {v:.3g}" for k, v in results[label][-1].items())
                    print(f"run {run + 1} {label}: {figures}", flush=True)
    print(f"\nmedians of {args.runs} runs (warm turn: median of {WARM_TURNS} per run):")
    header = "".join(f"{label:>10}" for label in SETTINGS)
    print(f"  {'':<14}{header}{'process/bare':>14}{'docker/bare':>13}")
    for metric in METRICS:
        medians = {label: statistics.median(r[metric] for r in results[label]) for label in SETTINGS}
        row = "".join(f"{medians[label]:>10.3g}" for label in SETTINGS)
        ratios = f"{medians['process'] / medians['bare']:>14.2f}{medians['docker'] / medians['bare']:>13.2f}"
        print(f"  {metric:<14}{row}{ratios}")


if __name__ == "__main__":
    main()
