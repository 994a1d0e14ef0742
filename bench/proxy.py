"""The control plane's added latency on chat: the same warm request sent straight to the gateway and
through the control plane, interleaved, with the fake model upstream answering at once.

Prints p50/p95 of each path and their ratio, and streaming time-to-first-byte both ways. Not a test.

    .venv/bin/python bench/proxy.py --requests 30
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from tests.e2e.harness import Server, destroy_sandboxes, require_runtime
from tests.factories import auth, create_instance, signup
from tests.fakes.model_server import FakeModelServer

MODEL = "claude-sonnet-4-20250514"


def gateway_token(data_dir: Path, instance_id: str) -> str:
    with sqlite3.connect(data_dir / "chowder.db") as conn:
        (encrypted,) = conn.execute("SELECT gateway_token_enc FROM instances WHERE id = ?", (instance_id,)).fetchone()
    return SecretBox.from_settings(Settings(data_dir=data_dir)).decrypt(encrypted)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(send: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    response = send()
    assert response.status_code == 200, response.text
    return time.perf_counter() - started


def first_byte(client: httpx.Client, url: str, headers: dict[str, str], body: dict[str, object]) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, headers=headers, json=body) as stream:
        assert stream.status_code == 200
        elapsed = None
        for _ in stream.iter_raw():
            elapsed = elapsed or time.perf_counter() - started
    assert elapsed is not None
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per path")
    args = parser.parse_args()
    require_runtime()
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-bench-", dir="/tmp"))
    data_dir.chmod(0o711)
    with FakeModelServer() as fake:
        server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_ANTHROPIC_BASE_URL=fake.url)
        try:
            server.start()
            key = signup(server.client, "bench")
            instance_id = create_instance(server.client, key)["id"]
            body = server.wait_status(key, instance_id, {"running", "error"})
            assert body["status"] == "running", body["error_message"]
            gateway = body["gateway_url"]
            token = gateway_token(data_dir, instance_id)
            client = httpx.Client(timeout=120)

            def direct_headers(session: str) -> dict[str, str]:
                return {
                    "Authorization": f"Bearer {token}",
                    "x-openclaw-session-key": session,
                    "x-openclaw-model": f"anthropic/{MODEL}",
                }

            def direct() -> httpx.Response:
                return client.post(
                    f"{gateway}/v1/responses",
                    headers=direct_headers("direct"),
                    json={"model": "openclaw", "input": "ping"},
                )

            def proxied() -> httpx.Response:
                return client.post(
                    f"{server.url}/v1/instances/{instance_id}/session/proxied/responses",
                    headers=auth(key),
                    json={"model": MODEL, "input": "ping"},
                )

            for _ in range(3):  # warm both paths (lazy runtime load, first session creation)
                timed(direct)
                timed(proxied)
            results: dict[str, list[float]] = {"direct": [], "proxied": []}
            for _ in range(args.requests):
                results["direct"].append(timed(direct))
                results["proxied"].append(timed(proxied))
            ttfb: dict[str, list[float]] = {"direct": [], "proxied": []}
            for _ in range(max(5, args.requests // 3)):
                ttfb["direct"].append(
                    first_byte(
                        client,
                        f"{gateway}/v1/responses",
                        direct_headers("direct-s"),
                        {"model": "openclaw", "input": "ping", "stream": True},
                    )
                )
                ttfb["proxied"].append(
                    first_byte(
                        client,
                        f"{server.url}/v1/instances/{instance_id}/session/proxied-s/responses",
                        auth(key),
                        {"model": MODEL, "input": "ping", "stream": True},
                    )
                )
        finally:
            server.stop()
            destroy_sandboxes(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)

    print(f"non-streaming round trip, {args.requests} interleaved requests per path (ms):")
    for name, values in results.items():
        print(f"  {name:<8} p50 {1000 * statistics.median(values):7.1f}   p95 {1000 * percentile(values, 0.95):7.1f}")
    print(
        f"  ratio    p50 {statistics.median(results['proxied']) / statistics.median(results['direct']):7.2f}   "
        f"p95 {percentile(results['proxied'], 0.95) / percentile(results['direct'], 0.95):7.2f}"
    )
    print("streaming time to first byte (ms):")
    for name, values in ttfb.items():
        print(f"  {name:<8} p50 {1000 * statistics.median(values):7.1f}   p95 {1000 * percentile(values, 0.95):7.1f}")


if __name__ == "__main__":
    main()
