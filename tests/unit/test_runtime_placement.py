"""The runtime lays a gateway out where the provider says: the listen addresses, the model endpoint and the
shared runtime's place inside the sandbox all come from SandboxInfo, never from the host."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import httpx

from chowder.core.errors import NotFound
from chowder.core.settings import Settings
from chowder.domain.ports.runtime import InstanceRuntimeSpec
from chowder.runtime.openclaw.runtime import OpenClawRuntime
from chowder.sandbox.base import SandboxInfo, SandboxProvider

TRUSTS_DISCORD = {"plugins": {"entries": {"discord": {"enabled": True}}}}
SPEC = InstanceRuntimeSpec("i", "o", "sb", "anthropic", "2026.9.6", TRUSTS_DISCORD, "open", "gw-token", "model-token")


class StateDir:
    """A sandbox state dir that holds nothing yet and keeps what is written to it."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def read_file(self, sandbox_id: str, path: str, *, max_bytes: int, tail: bool = False) -> bytes:
        raise NotFound(path)

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        self.files[path] = data


def test_a_gateway_is_placed_where_the_provider_says(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            runtime = OpenClawRuntime(Settings(data_dir=tmp_path, runtime_dir=tmp_path / "runtime"), http)
            given = runtime.sandbox_spec(SPEC).read_only_paths
            info = SandboxInfo(
                "sb",
                root="/state",
                home="/home/agent",
                app_port=8080,
                listen="loopback",
                model_endpoint_url="http://model.internal:9000",
                read_only_paths={path: f"/opt/ro{index}" for index, path in enumerate(given)},
            )
            state = StateDir()
            launch = await runtime.prepare(cast(SandboxProvider, state), info, SPEC, first_boot=True)
            return launch.argv, launch.env, json.loads(state.files["openclaw.json"])

    argv, env, config = asyncio.run(scenario())
    assert argv == (
        "/opt/ro0/bin/node",
        "/opt/ro1/node_modules/openclaw/openclaw.mjs",
        "gateway",
        "run",
        "--port",
        "8080",
    )
    assert env["PATH"].startswith("/opt/ro0/bin:") and env["HOME"] == "/home/agent"
    assert env["OPENCLAW_STATE_DIR"] == "/state" and env["OPENCLAW_CONFIG_PATH"] == "/state/openclaw.json"
    assert "OPENCLAW_ALLOW_OLDER_BINARY_DESTRUCTIVE_ACTIONS" not in env, "only an asked release change may downgrade"
    gateway: dict[str, Any] = config["gateway"]
    assert (gateway["bind"], gateway["port"]) == ("loopback", 8080)
    assert config["models"]["providers"]["anthropic"]["baseUrl"] == "http://model.internal:9000/model/anthropic"
    assert config["logging"]["file"] == "/state/logs/openclaw.log"
    assert config["plugins"]["load"]["paths"] == ["/opt/ro1/node_modules/@openclaw/discord"]
    assert config["plugins"]["installs"]["discord"]["installPath"] == "/opt/ro1/node_modules/@openclaw/discord"
