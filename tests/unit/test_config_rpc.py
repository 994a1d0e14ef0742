"""The live-config write protocol against the admin RPC's wire format: refusal vs. a write that did not apply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from chowder.runtime.openclaw import rpc


def answer(payload: object) -> httpx.Response:
    """A 200 whose body is still to be read, as a gateway's on the network is (the client streams it)."""
    return httpx.Response(200, stream=httpx.ByteStream(json.dumps(payload).encode()))


def gateway(patch_answers: list[dict[str, Any]]) -> tuple[httpx.AsyncClient, list[tuple[str, dict[str, Any]]]]:
    """A transport answering `config.get` with a fixed config and `config.patch` with the given answers in turn."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append((body["method"], body["params"]))
        if body["method"] == "config.get":
            parsed = {"channels": {"discord": {"enabled": False}}}
            return answer({"ok": True, "payload": {"parsed": parsed, "hash": f"h{len(calls)}"}})
        return answer(patch_answers.pop(0))

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), calls


def failure(message: str, issues: list[dict[str, str]] | None = None) -> dict[str, Any]:
    details = {"issues": issues} if issues else None
    return {"ok": False, "error": {"code": "INVALID_REQUEST", "message": message, "details": details}}


PATCH = {"channels": {"discord": {"enabled": True, "token": "t"}}}


def test_a_schema_refusal_is_config_refused_and_nothing_is_undone() -> None:
    http, calls = gateway([failure("invalid config", [{"path": "channels.discord.token", "message": "bad"}])])
    with pytest.raises(rpc.ConfigRefused) as refused:
        asyncio.run(rpc.patch_config(http, "http://gw", "tok", PATCH))
    assert "channels.discord.token: bad" in str(refused.value.detail)
    assert [method for method, _ in calls] == ["config.get", "config.patch"]
    assert calls[1][1]["baseHash"] == "h1"


def test_a_write_the_gateway_could_not_apply_is_undone_key_by_key() -> None:
    not_applied = "config.patch persisted but was not applied to the active Gateway (failed)"
    http, calls = gateway([failure(not_applied), {"ok": True, "payload": {}}])
    with pytest.raises(rpc.ProviderError) as failed:
        asyncio.run(rpc.patch_config(http, "http://gw", "tok", PATCH))
    assert not isinstance(failed.value, rpc.ConfigRefused)
    assert "previous config is back" in str(failed.value.detail)
    assert [method for method, _ in calls] == ["config.get", "config.patch", "config.get", "config.patch"]
    undo = calls[3][1]
    assert json.loads(undo["raw"]) == {"channels": {"discord": {"enabled": False, "token": None}}}
    assert undo["baseHash"] == "h3"


def test_an_oversized_answer_is_refused_and_asked_for_uncompressed() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        return answer({"ok": True, "payload": {"x": "x" * (17 * 1024 * 1024)}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    with pytest.raises(rpc.ProviderError, match="The gateway's answer exceeds 16 MiB."):
        asyncio.run(rpc.call(http, "http://gw", "tok", "config.get", {}))
    assert seen == ["identity"]
