"""Commands run by the agent inside an instance, through OpenClaw's own shell tool (`exec`): one chat turn through
the public API in which the fake model (`tests/fakes/model_server.py`) calls the tool and answers with its
result. A test thereby sees what the agent's commands see (uid, capabilities, files), not what the control plane
believes it set up. The instance's model provider must be the fake (`CHOWDER_ANTHROPIC_BASE_URL`)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.harness import Server
from tests.factories import auth, output_text
from tests.fakes.model_server import RUN_SHELL, SHELL_RESULT

CLAUDE = "claude-sonnet-4-20250514"

# OpenClaw's "never prompt" gateway-host setup (docs/tools/exec-approvals.md, YOLO mode): exec runs in the
# gateway's own process environment (no OpenClaw sandbox), with security `full` and no approval asked, inline
# `python3 -c` style commands included. The defaults give the same today; pinned so that a runtime upgrade which
# tightens a default fails loudly instead of leaving commands waiting for an approval nobody can give.
EXEC_CONFIG: dict[str, Any] = {"tools": {"exec": {"host": "gateway", "mode": "full", "strictInlineEval": False}}}


def agent_shell(server: Server, key: str, instance_id: str, command: str, timeout_s: float = 120.0) -> str:
    """The output of a one-line `command` (stdout and stderr as OpenClaw's exec reports them), run in a session of
    its own so that no call sees another's history; AssertionError with the answer when no result came back."""
    if "\n" in command:
        raise ValueError("one line only: the fake model reads the command from a single `RUN_SHELL:` line")
    session = f"shell-{uuid.uuid4().hex[:12]}"
    response = server.client.post(
        f"/v1/instances/{instance_id}/session/{session}/responses",
        headers=auth(key),
        json={"model": CLAUDE, "input": f"{RUN_SHELL}{command}"},
        timeout=timeout_s,
    )
    if response.status_code != 200:
        raise AssertionError(f"turn for {command!r} failed: HTTP {response.status_code} {response.text}")
    _, marker, output = output_text(response.json()).partition(SHELL_RESULT)
    if not marker:
        raise AssertionError(f"no shell result for {command!r}: {response.text}")
    return output
