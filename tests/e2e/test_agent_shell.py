"""The agent's own shell on one real gateway: commands that the fake model has OpenClaw's `exec` tool run show the
sandbox the agent really lives in (an unprivileged uid, no capabilities, the instance's workspace)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.agent_shell import EXEC_CONFIG, agent_shell
from tests.e2e.harness import RunningInstance, running_instance
from tests.factories import auth
from tests.fakes.model_server import SHELL_TOOL, FakeModelServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def inst(fake: FakeModelServer) -> Iterator[RunningInstance]:
    with running_instance(
        "Shell",
        model_keys={"anthropic": "sk-ant-shell-test"},
        openclaw_config=EXEC_CONFIG,
        CHOWDER_ANTHROPIC_BASE_URL=fake.url,
    ) as env:
        yield env


def shell(inst: RunningInstance, command: str) -> str:
    return agent_shell(inst.server, inst.key, inst.instance_id, command)


def test_the_agent_runs_unprivileged(inst: RunningInstance, fake: FakeModelServer) -> None:
    uid = shell(inst, "id -u").strip()
    assert uid.isdigit() and uid != "0", uid
    calls = [r["tool_call"] for r in fake.requests if r["tool_call"]]
    assert calls == [{"name": SHELL_TOOL, "input": {"command": "id -u"}}], "the output came through OpenClaw's exec"
    assert shell(inst, "cat /proc/self/status | grep CapEff").split() == ["CapEff:", "0000000000000000"]


def test_commands_run_in_the_instances_workspace(inst: RunningInstance) -> None:
    token = uuid.uuid4().hex
    output = shell(inst, f"echo {token} > agent-shell.txt && cat agent-shell.txt && echo to-stderr >&2")
    assert output.split() == [token, "to-stderr"], output
    read = inst.server.client.get(
        f"{inst.base}/files/content", headers=auth(inst.key), params={"path": "workspace/agent-shell.txt"}
    )
    assert read.status_code == 200, read.text
    assert read.json()["content"] == f"{token}\n"
