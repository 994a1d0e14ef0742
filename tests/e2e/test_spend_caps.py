"""Spend caps on one real gateway, its model upstream the fake: a scoped key over its monthly cap gets 402 from the
Responses API while another key of the org still chats; a turn that crosses the cap between its two model calls
(the agent's shell tool, then its answer) fails at once with the cap named; the organization's cap refuses all."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.agent_shell import EXEC_CONFIG
from tests.e2e.harness import RunningInstance, running_instance
from tests.factories import auth, output_text
from tests.fakes.model_server import RUN_SHELL, SHELL_TOOL, FakeModelServer

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def inst(fake: FakeModelServer) -> Iterator[RunningInstance]:
    with running_instance(
        "Caps",
        model_keys={"anthropic": "sk-ant-caps-test"},
        openclaw_config=EXEC_CONFIG,
        CHOWDER_ANTHROPIC_BASE_URL=fake.url,
    ) as env:
        yield env


class Org:
    """The module's org as its clients see it: the org key and two scoped keys that may chat."""

    def __init__(self, inst: RunningInstance) -> None:
        self.inst, self.client = inst, inst.server.client
        self.capped_id, self.capped = self.new_key("capped")
        self.other = self.new_key("other")[1]

    def new_key(self, name: str) -> tuple[str, str]:
        body = {"name": name, "instance_ids": [self.inst.instance_id], "permissions": ["interact"]}
        response = self.client.post("/v1/keys", headers=auth(self.inst.key), json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"], response.json()["raw_key"]

    def chat(self, key: str, text: str = "hello", session: str = "caps", *, stream: bool = False) -> Any:
        return self.client.post(
            f"{self.inst.base}/session/{session}/responses",
            headers=auth(key),
            json={"model": CLAUDE, "input": text, "stream": stream},
            timeout=120,
        )

    def patch(self, path: str, limit: int | None) -> dict[str, Any]:
        response = self.client.patch(path, headers=auth(self.inst.key), json={"monthly_token_limit": limit})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def used(self, path: str) -> int:
        used: int = self.client.get(path, headers=auth(self.inst.key)).json()["monthly_tokens_used"]
        return used


def refused(response: Any, detail: str) -> bool:
    return (response.status_code, response.json()) == (402, {"detail": detail})


def calls_of(fake: FakeModelServer, session: str) -> list[dict[str, Any]]:
    """The model calls of a session that reached the provider (OpenClaw marks each with its session key)."""
    marker = re.compile(rf"session=agent:main:{re.escape(session)}(?![\w.:@-])")
    return [r for r in fake.requests if marker.search(json.dumps(r["body"]))]


def failure_of(stream: str) -> dict[str, Any]:
    [failed] = [json.loads(line[6:]) for line in stream.splitlines() if '"type":"response.failed"' in line]
    return dict(failed["response"]["error"])


def test_caps_refuse_the_key_over_its_cap_and_then_the_whole_org(inst: RunningInstance, fake: FakeModelServer) -> None:
    org = Org(inst)
    key_path = f"/v1/keys/{org.capped_id}"
    first = org.chat(org.capped)
    assert first.status_code == 200 and output_text(first.json()).startswith("ECHO["), first.text
    used = org.used(key_path)
    assert used > 0 and org.used("/v1/organization") >= used

    # Room for one more model call: the shell tool's call is answered, the answer after it refused mid-turn.
    for session, stream in (("crossing", False), ("crossing-streamed", True)):
        limit = org.used(key_path) + 1
        org.patch(key_path, limit)
        cap = f"Monthly token limit of this API key reached ({limit:,} tokens)."
        crossing = org.chat(org.capped, f"{RUN_SHELL}echo crossed", session, stream=stream)
        if stream:
            assert crossing.status_code == 200 and failure_of(crossing.text)["message"] == cap, crossing.text
        else:
            assert refused(crossing, cap), crossing.text
        assert [call["tool_call"]["name"] for call in calls_of(fake, session)] == [SHELL_TOOL], "the refused call"

    assert refused(org.chat(org.capped), cap)
    assert org.chat(org.other).status_code == 200, "another key of the org still chats on the same instance"
    report = org.client.get("/v1/organization/usage", headers=auth(inst.key)).json()["spend"]
    [capped] = report["keys"]
    assert capped["key_id"] == org.capped_id and capped["monthly_tokens_used"] > limit

    org_used = org.used("/v1/organization")
    assert org.patch("/v1/organization", org_used)["monthly_token_limit"] == org_used
    org_cap = f"Monthly token limit of the organization reached ({org_used:,} tokens)."
    for key in (org.other, inst.key):
        assert refused(org.chat(key), org_cap)
    org.patch("/v1/organization", None)
    assert org.chat(org.other).status_code == 200
