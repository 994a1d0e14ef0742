"""Fixtures for the SDK and CLI tests: a real `chowder serve` (the end-to-end harness's), signed-up
organizations on it, and the operator's own command to lift an organization's instance limit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chowder.client import Chowder
from tests.e2e.harness import Server


def start_server(*command: str, **env: str) -> tuple[Server, Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-client-", dir="/tmp"))
    server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", command=("serve", *command), **env)
    server.start()
    return server, data_dir


def stop_server(server: Server, data_dir: Path) -> None:
    server.stop()
    server.client.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def api_server() -> Iterator[Server]:
    """One server without the lifecycle engine for the whole session: instances stay `provisioning`, which is all
    the tests of keys, organizations, listing, errors and paging need. Each test signs up its own organization."""
    server, data_dir = start_server("--no-engine")
    yield server
    stop_server(server, data_dir)


@dataclass
class Org:
    server: Server
    key: str
    id: str

    def client(self, key: str | None = None) -> Chowder:
        return Chowder(self.server.url, self.key if key is None else key)

    def make_whale(self) -> None:
        """No instance limit, granted the way an operator does it (`chowder admin set-tier`)."""
        done = subprocess.run(
            [sys.executable, "-m", "chowder.cli.main", "admin", "set-tier", self.id, "whale"],
            env=self.server.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def signed_up(server: Server, name: str, model_keys: dict[str, str] | None = None) -> Org:
    with Chowder(server.url) as anonymous:
        created = anonymous.organization.signup(name)
    org = Org(server, created.api_key, created.organization.id)
    keys = {"anthropic": "sk-ant-test-key"} if model_keys is None else model_keys
    if keys:
        with org.client() as chowder:
            chowder.organization.update(model_api_keys=keys)
    return org


@pytest.fixture
def org(api_server: Server, request: pytest.FixtureRequest) -> Org:
    """A new organization on the engine-less server, with an Anthropic key set (so instances can be created)."""
    return signed_up(api_server, request.node.name[:100])


@dataclass
class Cli:
    """The `chowder` command run as a user runs it: its own process, its own config dir (XDG_CONFIG_HOME)."""

    config_home: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, ok: bool = True, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "chowder.cli.main", *args],
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,  # a question (delete's confirmation) is answered "no", never waited on
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if ok:
            assert done.returncode == 0, f"chowder {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    @property
    def credentials(self) -> Path:
        return self.config_home / "chowder" / "credentials.json"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Nothing of the user's environment leaks in: no stored login, no CHOWDER_URL / CHOWDER_API_KEY."""
    env = {k: v for k, v in os.environ.items() if k not in {"CHOWDER_URL", "CHOWDER_API_KEY"}}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "config"), "COLUMNS": "200", "NO_COLOR": "1"}
    return Cli(tmp_path / "config", env)
