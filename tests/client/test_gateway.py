"""The SDK and the CLI on a real OpenClaw gateway answering with the dev model (no provider key): create --wait
with its progress, chat streamed through the SDK's iterator, `chowder chat -m` and the REPL in a pseudo-terminal,
files up and down, and stop/start with progress. One server and ONE instance for the whole module (a gateway
takes ~1.1 GiB and 20-35 s to boot); the tests run in file order, stop/start last."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chowder.client import AsyncChowder, Chowder
from chowder.schemas.responses import ResponseObject
from tests.client.conftest import Cli, signed_up, start_server
from tests.conftest import release_networks_below, unmount_below
from tests.e2e.harness import Server, destroy_sandboxes, require_runtime

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"


@dataclass
class Agent:
    server: Server
    key: str
    id: str
    cli: Cli
    workdir: Path

    def client(self) -> Chowder:
        return Chowder(self.server.url, self.key)


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    """A dev-model server, an org logged in through `chowder login`, and an instance made with `chowder instances
    create --wait`, whose progress view must have shown the gateway booting."""
    require_runtime()
    server, data_dir = start_server(CHOWDER_DEV_MODEL="1")
    workdir = Path(tempfile.mkdtemp(prefix="chowder-cli-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in {"CHOWDER_URL", "CHOWDER_API_KEY"}}
    cli = Cli(workdir / "config", env | {"XDG_CONFIG_HOME": str(workdir / "config"), "COLUMNS": "200", "NO_COLOR": "1"})
    try:
        org = signed_up(server, "Gateway", model_keys={})
        cli("login", "--url", server.url, "--key", org.key)
        started = time.monotonic()
        created = cli("instances", "create", "agent", "--wait", "--json", timeout=600)
        instance = json.loads(created.stdout)
        assert instance["status"] == "running", created.stderr
        assert "booting the gateway" in created.stderr and "agent is running after" in created.stderr, created.stderr
        print(f"create --wait: running after {time.monotonic() - started:.1f} s")  # noqa: T201
        yield Agent(server, org.key, instance["id"], cli, workdir)
    finally:
        server.stop()
        destroy_sandboxes(data_dir)
        release_networks_below(data_dir)
        unmount_below(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_sdk_streams_a_turn_event_by_event(agent: Agent) -> None:
    with agent.client() as chowder:
        with chowder.responses.stream(agent.id, "hello stream", model=CLAUDE, session="sdk") as events:
            seen = list(events)
            final = events.final
        deltas = "".join(e.delta or "" for e in seen if e.type == "response.output_text.delta")
        assert seen[-1].type == "response.completed" and final is not None and final.status == "completed"
        assert deltas == final.output_text and deltas.startswith(f"ECHO[{CLAUDE}] turns=1 ")
        assert "last=hello stream" in deltas
        numbers = [e.sequence_number for e in seen]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)

        answer = chowder.responses.create(agent.id, "and again", model=CLAUDE, session="sdk")
        assert answer.status == "completed" and "turns=2" in answer.output_text
        assert "last=and again" in answer.output_text and "history=hello stream" in answer.output_text


@pytest.mark.anyio
async def test_the_async_sdk_streams_the_text(agent: Agent, anyio_backend: str) -> None:
    async with AsyncChowder(agent.server.url, agent.key) as chowder:
        events = await chowder.responses.stream(agent.id, "async hello", model=CLAUDE, session=anyio_backend)
        text = "".join([delta async for delta in events.text()])
    assert text.startswith(f"ECHO[{CLAUDE}] turns=1 ") and "last=async hello" in text


def test_chat_one_shot_prints_the_answer(agent: Agent) -> None:
    first = agent.cli("chat", "agent", "-m", "hello cli", "--session", "cli")
    assert first.stdout.startswith(f"ECHO[{CLAUDE}] turns=1 ") and "last=hello cli" in first.stdout
    second = agent.cli("chat", agent.id, "-m", "once more", "--session", "cli", "--json")
    assert "turns=2" in ResponseObject.model_validate_json(second.stdout).output_text


def test_the_repl_streams_answers_in_a_terminal(agent: Agent) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "chowder.cli.main", "chat", "agent", "--session", "repl"],
        env=agent.cli.env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    screen = _Screen(controller)
    try:
        screen.expect("you> ")
        os.write(controller, b"first words\n")
        assert "last=first words" in screen.expect("you> ")
        os.write(controller, b"second words\n")
        answer = screen.expect("you> ")
        assert f"ECHO[{CLAUDE}] turns=2 " in answer and "history=first words" in answer
        os.write(controller, b"/exit\n")
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


class _Screen:
    """What the program wrote to its terminal, read until a marker shows up."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = ""

    def expect(self, marker: str, timeout_s: float = 120) -> str:
        deadline = time.monotonic() + timeout_s
        while marker not in self.buffer:
            assert time.monotonic() < deadline, f"no {marker!r} on the terminal:\n{self.buffer}"
            ready, _, _ = select.select([self.fd], [], [], 1)
            if ready:
                try:
                    self.buffer += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the program closed its terminal
                    break
        before, _, self.buffer = self.buffer.partition(marker)
        return before


def test_usage_shows_each_session_and_pages_its_breakdowns(agent: Agent) -> None:
    with agent.client() as chowder:
        whole = chowder.instances.usage(agent.id)
        sessions = {s.session_id for s in whole.sessions}
        assert {"sdk", "cli", "repl", "asyncio"} <= sessions and whole.total.requests >= 8
        pages = [chowder.instances.usage_page(agent.id, limit=2)]
        while (cursor := pages[-1].next_cursor) is not None:
            pages.append(chowder.instances.usage_page(agent.id, limit=2, cursor=cursor))
        assert all(len(p.report.sessions) <= 2 and p.report.total == whole.total for p in pages)
        assert [s.session_id for p in pages for s in p.report.sessions] == [s.session_id for s in whole.sessions]
        assert chowder.organization.usage_page(limit=1).report.total == whole.total
    table = agent.cli("usage", "agent").stdout
    assert "repl" in table and CLAUDE in table


def test_files_go_up_and_come_back_down(agent: Agent) -> None:
    local = agent.workdir / "notes.txt"
    local.write_text("remember the milk\n")
    agent.cli("files", "put", "agent", str(local))
    listing = json.loads(agent.cli("files", "ls", "agent", "workspace", "--json").stdout)
    assert {e["name"]: e["size"] for e in listing["entries"]}["notes.txt"] == 18
    assert agent.cli("files", "cat", "agent", "workspace/notes.txt").stdout == "remember the milk\n"
    agent.cli("files", "mkdir", "agent", "workspace/archive")
    agent.cli("files", "mv", "agent", "workspace/notes.txt", "workspace/archive/notes.txt")
    agent.cli("files", "get", "agent", "workspace/archive/notes.txt", str(agent.workdir / "back.txt"))
    assert (agent.workdir / "back.txt").read_text() == "remember the milk\n"
    agent.cli("files", "rm", "agent", "workspace/archive")
    gone = agent.cli("files", "cat", "agent", "workspace/archive/notes.txt", ok=False)
    assert gone.returncode == 1 and "404" in gone.stderr

    blob = os.urandom(3 * 1024 * 1024 + 17)  # binary, several chunks
    with agent.client() as chowder:
        with (agent.workdir / "blob.bin").open("wb") as out:
            out.write(blob)
        with (agent.workdir / "blob.bin").open("rb") as data:
            chowder.files.upload(agent.id, "workspace/blob.bin", data)
        with chowder.files.open(agent.id, "workspace/blob.bin") as download:
            assert (download.name, download.size) == ("blob.bin", len(blob))
            digest = hashlib.sha256()
            chunks = 0
            for chunk in download.iter_bytes():
                digest.update(chunk)
                chunks += 1
        assert digest.hexdigest() == hashlib.sha256(blob).hexdigest() and chunks > 1
    raw = subprocess.run(
        [sys.executable, "-m", "chowder.cli.main", "files", "cat", "agent", "workspace/blob.bin"],
        env=agent.cli.env,
        capture_output=True,
        check=True,
    )
    assert raw.stdout == blob  # not UTF-8: cat falls back to the bytes


def test_stop_and_start_show_the_progress(agent: Agent) -> None:
    stopped = agent.cli("instances", "stop", "agent", "--json", timeout=300)
    assert json.loads(stopped.stdout)["status"] == "stopped"
    started = agent.cli("instances", "start", "agent", timeout=600)
    assert "booting the gateway" in started.stderr and "agent is running after" in started.stderr, started.stderr
    assert "last=awake again" in agent.cli("chat", "agent", "-m", "awake again").stdout
