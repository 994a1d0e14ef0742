"""The bare OpenClaw gateway, started by the bench itself: the same pinned Node and OpenClaw from the runtime cache,
the same `openclaw.json` a Chowder instance starts with (rendered for loopback), as a plain host process with no
control plane, sandbox or warm-up. What the targets of the density issue compare against: its cold start and its
restart on kept state to `/readyz`, and its memory once idle."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from chowder.core.model_providers import ModelProvider
from chowder.runtime.openclaw import config as oc_config
from chowder.runtime.openclaw.catalog import shipped_models
from chowder.runtime.openclaw.installer import RuntimeCache
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES
from tests.conftest import SHARED_RUNTIME
from tests.e2e.harness import free_port

READY_TIMEOUT_S = 300


class BareGateway:
    """One gateway on a state dir of its own (kept across `stop` and `boot`, removed by `close`)."""

    def __init__(self) -> None:
        cache, release = RuntimeCache(SHARED_RUNTIME), RELEASES[DEFAULT_RELEASE]
        self.root = Path(tempfile.mkdtemp(prefix="chowder-bare-", dir="/tmp"))
        self.state, self.port = self.root / "state", free_port()
        (self.root / "home").mkdir()
        placement = oc_config.GatewayPlacement(
            port=self.port,
            bind="loopback",
            state_dir=str(self.state),
            log_file=f"{self.state}/logs/openclaw.log",
            model_base_url="http://127.0.0.1:9/model",  # never called: the bare gateway gets no turns
            plugins=tuple(
                oc_config.ShippedPlugin(name, version, str(cache.plugin_dir(release, name)))
                for name, version in release.plugins.items()
            ),
            models=shipped_models(cache.package_dir(release)),
        )
        self.state.mkdir()
        rendered = oc_config.render(ModelProvider.ANTHROPIC, {}, placement)
        (self.state / "openclaw.json").write_text(json.dumps(rendered, indent=2))
        self.argv = [str(cache.node), str(cache.entrypoint(release)), "gateway", "run", "--port", str(self.port)]
        self.env = {
            "PATH": f"{cache.node.parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "OPENCLAW_STATE_DIR": str(self.state),
            "OPENCLAW_CONFIG_PATH": str(self.state / "openclaw.json"),
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_OFFLINE": "1",
            "MALLOC_ARENA_MAX": "2",
            "NODE_DISABLE_COMPILE_CACHE": "1",
            oc_config.GATEWAY_TOKEN_ENV: "bare-gateway-token-" + "x" * 24,
            oc_config.MODEL_TOKEN_ENV: "bare-model-token-" + "x" * 24,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def boot(self) -> float:
        """Seconds from spawn to `/readyz` answering 200."""
        log = open(self.root / "gateway.out", "ab")  # noqa: SIM115 (kept by the process)
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        with httpx.Client(timeout=2, trust_env=False) as client:
            while time.monotonic() - started < READY_TIMEOUT_S:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the bare gateway exited: see {self.root / 'gateway.out'}")
                try:
                    if client.get(f"http://127.0.0.1:{self.port}/readyz").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError("the bare gateway never became ready")

    def pids(self) -> list[int]:
        """The gateway and whatever it spawned (its session, which it was started as the leader of)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.getsid(int(entry.name)) == self.process.pid:
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever it left in its session
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
