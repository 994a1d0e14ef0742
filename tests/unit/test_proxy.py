"""The Responses proxy's failure shapes, against real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import httpx
import pytest

from chowder.core.errors import GATEWAY_UNAVAILABLE, BadRequest, GatewayTimeout, GatewayUnavailable
from chowder.core.model_providers import ModelProvider
from chowder.core.settings import MIB
from chowder.domain.chat import Turn, check_session_id, model_ref
from chowder.domain.turns import SessionLocks
from chowder.proxy.responses import send_turn
from chowder.runtime.openclaw import chat
from tests.fakes.gateway_answers import ANSWER, EVENTS, TOOL_EVENTS, sse
from tests.open_responses import response_problems, stream_problems


class _Runtime:
    """All the proxy asks of the agent runtime: how a turn is addressed to its gateway (OpenClaw's way)."""

    chat_request = staticmethod(chat.chat_request)


RUNTIME = _Runtime()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_gateway_is_502_with_the_documented_body() -> None:
    turn = Turn("i", f"http://127.0.0.1:{_closed_port()}", "token", "anthropic/claude-x")
    locks = SessionLocks()

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            with pytest.raises(GatewayUnavailable) as caught:
                await send_turn(
                    http, RUNTIME, turn, "main", {"model": "claude-x", "input": "hi"}, 5, locks.hold("i", "main")
                )
        assert caught.value.detail == GATEWAY_UNAVAILABLE
        # The session lock was released: the next turn on the session is not stuck behind the failed one.
        async with asyncio.timeout(1), locks.hold("i", "main"):
            pass

    asyncio.run(scenario())
    assert GATEWAY_UNAVAILABLE["error"].startswith("Gateway unavailable – the sandbox")


def test_session_locks_queue_in_arrival_order_and_leave_other_sessions_free() -> None:
    locks = SessionLocks()
    order: list[str] = []

    async def turn(session: str, name: str, hold_s: float) -> None:
        async with locks.hold("i", session):
            order.append(f"start {name}")
            await asyncio.sleep(hold_s)
            order.append(f"end {name}")

    async def scenario() -> None:
        first = asyncio.create_task(turn("a", "a1", 0.05))
        await asyncio.sleep(0)
        await asyncio.gather(first, turn("a", "a2", 0), turn("b", "b1", 0))

    asyncio.run(scenario())
    assert order.index("end a1") < order.index("start a2")
    assert order.index("start b1") < order.index("end a1"), "another session does not wait"


@pytest.mark.parametrize(
    ("model", "provider", "ref"),
    [
        ("claude-sonnet-4-20250514", ModelProvider.ANTHROPIC, "anthropic/claude-sonnet-4-20250514"),
        ("gpt-4o", ModelProvider.OPENAI, "openai/gpt-4o"),
        ("o3-mini", ModelProvider.OPENAI, "openai/o3-mini"),
        ("chatgpt-4o-latest", ModelProvider.OPENAI, "openai/chatgpt-4o-latest"),
        ("gemini-2.0-flash", ModelProvider.GEMINI, "gemini/gemini-2.0-flash"),
        ("openai/my-finetune", ModelProvider.OPENAI, "openai/my-finetune"),
    ],
)
def test_model_names_pick_the_provider(model: str, provider: ModelProvider, ref: str) -> None:
    assert model_ref(model) == (provider, ref)


def test_bad_models_and_session_ids_are_400() -> None:
    for bad in ("llama-3", "mistral/large"):
        with pytest.raises(BadRequest):
            model_ref(bad)
    for session in ("", "x" * 129, "subagent:1", "cron:daily", "acp:z", "has space", "a/b"):
        with pytest.raises(BadRequest):
            check_session_id(session)
    assert check_session_id("user@example.com:ticket-42.v1_x") == "user@example.com:ticket-42.v1_x"


async def _serve_raw(reply: bytes, hang: bool) -> tuple[asyncio.AbstractServer, int]:
    """A gateway stand-in on a real socket: sends `reply` and then either hangs or drops the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        if hang:
            await asyncio.sleep(30)
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_silent_gateway_times_out_with_a_clear_504_and_frees_the_session() -> None:
    locks = SessionLocks()

    async def scenario() -> None:
        server, port = await _serve_raw(b"", hang=True)
        turn = Turn("i", f"http://127.0.0.1:{port}", "token", "anthropic/claude-x")
        async with server, httpx.AsyncClient() as http:
            with pytest.raises(GatewayTimeout) as caught:
                await send_turn(
                    http, RUNTIME, turn, "s", {"model": "claude-x", "input": "hi"}, 0.5, locks.hold("i", "s")
                )
        assert caught.value.detail == {"error": "The gateway did not answer within 0.5 s."}
        async with asyncio.timeout(1), locks.hold("i", "s"):
            pass

    asyncio.run(scenario())


def _chunked_200(body: bytes, end: bool) -> bytes:
    """A chunked 200 event stream carrying `body`; `end` finishes it properly, else the gateway just stops."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return head + b"%x\r\n%s\r\n" % (len(body), body) + (b"0\r\n\r\n" if end else b"")


def _proxied_stream(reply: bytes) -> bytes:
    """What the caller receives of a streamed turn whose gateway sends `reply` then hangs up; the session must be
    free again afterwards."""
    locks = SessionLocks()

    async def scenario() -> bytes:
        server, port = await _serve_raw(reply, hang=False)
        turn = Turn("i", f"http://127.0.0.1:{port}", "token", "anthropic/claude-x")
        async with server, httpx.AsyncClient() as http:
            response = await send_turn(
                http, RUNTIME, turn, "s", {"model": "claude-x", "input": "hi", "stream": True}, 5, locks.hold("i", "s")
            )
            body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        async with asyncio.timeout(1), locks.hold("i", "s"):
            pass
        return body

    return asyncio.run(scenario())


def _events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith(b"data: {")]


def test_a_streamed_answer_reaches_the_caller_complete_and_numbered() -> None:
    body = _proxied_stream(_chunked_200(sse(EVENTS), end=True))
    events = _events(body)
    assert stream_problems(events) == [] and len(events) == len(EVENTS)
    assert events[-1]["response"]["model"] == "claude-x" and body.endswith(b"\n\ndata: [DONE]\n\n")


def test_a_streamed_tool_call_carries_its_argument_events_as_whole_sse_events() -> None:
    """The events the proxy adds are SSE events of their own: each block has its `event:` line naming the type
    of its `data:` line, and the stream ends with `[DONE]` as before."""
    body = _proxied_stream(_chunked_200(sse(TOOL_EVENTS), end=True))
    blocks = [block.split(b"\n") for block in body.split(b"\n\n") if block]
    assert blocks[-1] == [b"data: [DONE]"]
    named = [(event[len(b"event: ") :].decode(), json.loads(data[len(b"data: ") :])) for event, data in blocks[:-1]]
    assert all(name == event["type"] for name, event in named)
    events = [event for _, event in named]
    assert stream_problems(events) == [] and len(events) == len(TOOL_EVENTS) + 2
    assert "response.function_call_arguments.done" in [event["type"] for event in events]


def test_a_whole_answer_reaches_the_caller_complete() -> None:
    answer = json.dumps(ANSWER).encode()
    reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer)

    async def scenario() -> Any:
        server, port = await _serve_raw(reply, hang=False)
        turn = Turn("i", f"http://127.0.0.1:{port}", "token", "anthropic/claude-x")
        async with server, httpx.AsyncClient() as http:
            body = {"model": "claude-x", "input": "hi", "instructions": "Be brief."}
            response = await send_turn(http, RUNTIME, turn, "s", body, 5, SessionLocks().hold("i", "s"))
        return json.loads(response.body)

    completed = asyncio.run(scenario())
    assert response_problems(completed) == []
    assert (completed["model"], completed["instructions"]) == ("claude-x", "Be brief.")


def test_a_gateway_that_dies_mid_stream_ends_the_stream_with_an_error_event() -> None:
    body = _proxied_stream(_chunked_200(sse(EVENTS[:5])[: -len(b"data: [DONE]\n\n")], end=False))
    assert body.startswith(b"event: response.created")
    assert b"event: response.failed" in body and body.rstrip().endswith(b"data: [DONE]")
    events = _events(body)
    assert stream_problems(events) == [], "the proxy's own failure is complete and numbered on"
    assert events[-1]["response"]["id"] == events[0]["response"]["id"]


async def _serve_endless(first: bytes) -> tuple[asyncio.AbstractServer, int, list[int]]:
    """A hostile gateway: a chunked 200 answer starting with `first`, then 'x' without a newline until the
    proxy hangs up (64 MiB at most); the list gets how many bytes it managed to send."""
    sent = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (len(first), first))
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError):
            while sent[0] < 64 * MIB:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent[0] += len(chunk)
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], sent


def _turn_against_endless_gateway(stream: bool) -> tuple[bytes | object, int]:
    """The streamed body or the error detail of one turn against `_serve_endless`, and how much it sent; the
    session must be free again afterwards."""
    locks = SessionLocks()

    async def scenario() -> tuple[bytes | object, int]:
        server, port, sent = await _serve_endless(
            b'event: response.created\ndata: {"type":"response.created"}\n\ndata: {"'
        )
        turn = Turn("i", f"http://127.0.0.1:{port}", "token", "anthropic/claude-x")
        body = {"model": "claude-x", "input": "hi", "stream": stream}
        async with server, httpx.AsyncClient() as http:
            try:
                response = await send_turn(http, RUNTIME, turn, "s", body, 5, locks.hold("i", "s"))
                result: bytes | object = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
            except GatewayUnavailable as exc:
                result = exc.detail
        async with asyncio.timeout(1), locks.hold("i", "s"):
            pass
        return result, sent[0]

    return asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_an_endless_event_line_ends_the_stream_with_response_failed() -> None:
    body, sent = _turn_against_endless_gateway(stream=True)
    assert sent < 16 * MIB, "the proxy hung up soon after the bound"
    assert isinstance(body, bytes) and body.startswith(b"event: response.created\ndata: ")
    assert body.endswith(b"data: [DONE]\n\n") and len(body) < 4096
    failed = json.loads(body.split(b"event: response.failed\ndata: ")[1].split(b"\n")[0])
    message = "The gateway sent an event line over 4 MiB; the stream was cut."
    assert failed["response"]["error"] == {"code": "server_error", "message": message}


@pytest.mark.timeout(30)
def test_an_endless_whole_answer_is_a_502_naming_the_bound() -> None:
    detail, sent = _turn_against_endless_gateway(stream=False)
    assert sent < 16 * MIB, "the proxy hung up soon after the bound"
    assert detail == {"error": "The gateway's answer exceeds 4 MiB."}
