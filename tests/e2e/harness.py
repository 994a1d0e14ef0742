"""A real `chowder serve` process for end-to-end tests, and independent checks of what it left running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from chowder.core.ids import sandbox_id_for
from chowder.core.settings import Settings
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES
from chowder.sandbox.docker.objects import SANDBOX_LABEL
from chowder.sandbox.registry import make_provider
from tests.conftest import SHARED_RUNTIME
from tests.factories import auth, create_instance, signup

BOOT_TIMEOUT_S = 300.0
# What the end-to-end modules that share one instance run on, each in turn.
PROVIDERS = ("process", "docker")


def require_runtime() -> None:
    if not RuntimeCache(SHARED_RUNTIME).is_installed(RELEASES[DEFAULT_RELEASE]):
        pytest.skip(f"OpenClaw runtime not installed in {SHARED_RUNTIME}; run `chowder runtime install`")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The Prometheus scraper's token of the servers that serve /metrics (the `server` fixture's).
METRICS_TOKEN = "e2e-scraper"


class Server:
    """`chowder serve` in its own process, so a test can SIGKILL it like a crash would; `command` runs another
    control-plane process on the same settings instead (`("serve", "--no-engine")`, `("worker",)`)."""

    def __init__(self, data_dir: Path, database_url: str, *, command: tuple[str, ...] = ("serve",), **env: str) -> None:
        self.data_dir = data_dir
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CHOWDER_DATA_DIR": str(data_dir),
            "CHOWDER_DATABASE_URL": database_url,
            "CHOWDER_RUNTIME_DIR": str(SHARED_RUNTIME),
            "CHOWDER_MODEL_PORT": str(free_port()),
            "CHOWDER_LEASE_S": "6",
            "CHOWDER_RECONCILE_INTERVAL_S": "0.5",
            "CHOWDER_OBSERVE_INTERVAL_S": "2",
            # Every org of a test signs up from loopback; the signup limit has its own test (tests/api).
            "CHOWDER_RATE_LIMIT_SIGNUP_PER_HOUR": "0",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.wrapper: list[str] = []  # a command that execs the server's argv (e.g. in a namespace of its own)
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def start(self) -> None:
        log = open(self.data_dir / f"server-{time.time():.0f}-{self.port}.log", "ab")  # noqa: SIM115 (kept by the process)
        serves = self.command[0] == "serve"
        argv = [*self.wrapper, sys.executable, "-m", "chowder.cli.main", *self.command]
        self.process = subprocess.Popen(
            [*argv, "--port", str(self.port)] if serves else argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        if not serves:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not come up:\n" + self.log_text())

    def kill(self) -> None:
        """A crash: SIGKILL, no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.data_dir.glob("server-*.log")))

    def wait_status(
        self, key: str, instance_id: str, until: set[str], timeout_s: float = BOOT_TIMEOUT_S
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            body: dict[str, Any] = self.client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()
            if body.get("status") in until:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"instance stuck in {body}\n{self.log_text()[-5000:]}")
            time.sleep(0.5)


def create_running(server: Server, key: str) -> tuple[dict[str, Any], float]:
    """A new instance once it runs, and how long create → running took (s)."""
    started = time.monotonic()
    instance_id = create_instance(server.client, key)["id"]
    body = server.wait_status(key, instance_id, {"running", "error"})
    assert body["status"] == "running", body["error_message"]
    return body, time.monotonic() - started


def provider_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The server's settings for the provider a fixture parametrized over `PROVIDERS` runs on (docker needs the
    engine: it skips without one)."""
    if request.param == "docker":
        request.getfixturevalue("docker_host")
        return {"CHOWDER_SANDBOX_PROVIDER": "docker"}
    return {}


def destroy_sandboxes(data_dir: Path, provider_name: str = "process") -> None:
    """Whatever a test did, leave no sandbox (process, cgroup, container, volume) behind."""
    settings = Settings(data_dir=data_dir, runtime_dir=SHARED_RUNTIME, sandbox_provider=provider_name)
    provider = make_provider(settings)

    async def destroy_all() -> None:
        for sandbox_id in await provider.sandboxes():
            await provider.destroy(sandbox_id)

    asyncio.run(destroy_all())


def sandbox_processes(sandbox_dir: Path) -> list[int]:
    """Pids whose working directory or command line lies in the sandbox dir (independent of our code)."""
    found = []
    marker = str(sandbox_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd.startswith(marker) or marker in cmdline):
            found.append(int(entry.name))
    return found


def one_gateway(server: Server, gateway_url: str) -> int:
    """The pid of the one gateway listening at `gateway_url`; with none or several, fails showing what the control
    plane and the gateways logged last (why one is missing shows there, and the test's teardown deletes them)."""
    pids = gateway_pids(gateway_url)
    if len(pids) != 1:
        gateway_logs = sorted((server.data_dir / "sandboxes").glob("*/box/**/gateway.out"))
        tails = [f"--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in gateway_logs]
        server_log = f"--- server\n{server.log_text()[-8000:]}"
        raise AssertionError("\n".join([f"{len(pids)} gateways listen at {gateway_url}", server_log, *tails]))
    return pids[0]


def gateway_pids(gateway_url: str) -> list[int]:
    """Pids of OpenClaw gateways (process title `openclaw-gateway`) listening where `gateway_url` points, read
    from /proc: each process's sockets and addresses as its own network namespace shows them."""
    url = httpx.URL(gateway_url)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes().split(b"\0")[0] != b"openclaw-gateway":
                continue
            if url.host != "127.0.0.1" and f"|-- {url.host}\n" not in (entry / "net" / "fib_trie").read_text():
                continue
            if listening_sockets(int(entry.name), url.port):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def listening_sockets(pid: int, port: int) -> set[str]:
    """The sockets (`socket:[inode]`) that process `pid` holds listening on `port`, as its own network namespace
    shows them. Raises OSError when the process is gone."""
    listening = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(f"socket:[{fields[9]}]")
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            held.add(os.readlink(fd))
    return held & listening


@dataclass
class RunningInstance:
    server: Server
    key: str
    instance_id: str
    data_dir: Path
    provider: str = "process"

    @property
    def base(self) -> str:
        return f"/v1/instances/{self.instance_id}"

    @property
    def box(self) -> Path:
        """Where the instance's files are on this host, looked up without the server's help."""
        return sandbox_box(self.data_dir, self.instance_id, self.provider)


def sandbox_box(data_dir: Path, instance_id: str, provider: str = "process") -> Path:
    """An instance's box on the host: below the data dir (process), or its volume's mountpoint (docker)."""
    sandbox_id = sandbox_id_for(instance_id)
    if provider == "docker":
        labels = [f"{SANDBOX_LABEL}={sandbox_id}"]
        volumes = [
            volume
            for volume in docker.from_env().volumes.list(filters={"label": labels})
            if volume.attrs["Name"].endswith(f"-{sandbox_id}")
        ]
        return Path(volumes[0].attrs["Mountpoint"]) if volumes else data_dir / "no-volume"
    return data_dir / "sandboxes" / sandbox_id / "box"


@contextmanager
def running_instance(
    org: str,
    model_keys: dict[str, str] | None = None,
    *,
    openclaw_config: dict[str, Any] | None = None,
    **env: str,
) -> Iterator[RunningInstance]:
    """A server of its own with one running instance (created with `openclaw_config`), for a module of tests to
    share; all torn down after."""
    require_runtime()
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-e2e-", dir="/tmp"))  # 0700
    server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", **env)
    try:
        server.start()
        key = signup(server.client, org, model_keys=model_keys)
        instance_id = create_instance(server.client, key, openclaw_config=openclaw_config)["id"]
        body = server.wait_status(key, instance_id, {"running", "error"})
        assert body["status"] == "running", body["error_message"]
        yield RunningInstance(server, key, instance_id, data_dir, env.get("CHOWDER_SANDBOX_PROVIDER", "process"))
    finally:
        server.stop()
        destroy_sandboxes(data_dir, env.get("CHOWDER_SANDBOX_PROVIDER", "process"))
        shutil.rmtree(data_dir, ignore_errors=True)
