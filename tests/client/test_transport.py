"""The SDK's own mechanics, below the API: the retry loop (on an httpx transport that answers as told, the seam
httpx offers for this), server-sent event decoding and download names."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from chowder.client import (
    Chowder,
    ChowderError,
    Conflict,
    GatewayUnavailable,
    RateLimited,
    Retries,
    ServiceUnavailable,
    routes,
)
from chowder.client.streams import EventDecoder, file_name

INSTANCE = {
    "id": "i-1",
    "organization_id": "o-1",
    "name": "a",
    "status": "running",
    "model_provider": "anthropic",
    "sandbox_provider": "process",
    "sandbox_id": None,
    "gateway_url": None,
    "openclaw_version": "v1",
    "openclaw_config": None,
    "region": None,
    "egress": "open",
    "error_message": None,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
    "auto_stop": None,
    "power": "awake",
}


class Answers:
    """Answers each request with the next of `statuses` (the last one repeats), recording what came."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        if status >= 400:
            return httpx.Response(status, json={"detail": f"status {status}"}, headers=self.headers)
        return httpx.Response(status, json=INSTANCE)

    def client(self, retries: Retries = Retries(attempts=3, backoff_s=0.001)) -> Chowder:
        return Chowder("http://chowder.test/v1", "chd_org_k", retries=retries, transport=httpx.MockTransport(self))


def test_a_get_is_retried_through_502_and_503_until_it_succeeds() -> None:
    answers = Answers(502, 503, 200)
    with answers.client() as chowder:
        assert chowder.instances.get("i-1").status == "running"
    assert len(answers.requests) == 3
    assert {str(r.url) for r in answers.requests} == {"http://chowder.test/v1/instances/i-1"}
    assert answers.requests[0].headers["authorization"] == "Bearer chd_org_k"


def test_retries_give_up_after_the_attempts_with_the_last_error() -> None:
    answers = Answers(503)
    with answers.client() as chowder, pytest.raises(ServiceUnavailable) as failed:
        chowder.instances.delete("i-1")
    assert len(answers.requests) == 4 and failed.value.detail == "status 503"


def test_a_post_is_sent_once_unless_it_has_an_idempotency_key() -> None:
    plain = Answers(502, 200)
    with plain.client() as chowder, pytest.raises(GatewayUnavailable):
        chowder.instances.stop("i-1")
    assert len(plain.requests) == 1

    keyed = Answers(502, 200)
    with keyed.client() as chowder:
        assert chowder.instances.stop("i-1", idempotency_key="stop-1").id == "i-1"
    assert [r.headers["idempotency-key"] for r in keyed.requests] == ["stop-1", "stop-1"]


def test_other_errors_are_not_retried() -> None:
    for status, error in ((409, Conflict), (429, RateLimited)):
        answers = Answers(status, 200)
        with answers.client() as chowder, pytest.raises(error):
            chowder.instances.get("i-1")
        assert len(answers.requests) == 1


def test_the_backoff_doubles_and_honours_retry_after() -> None:
    answers = Answers(503, 503, 200)
    started = time.monotonic()
    with answers.client(Retries(attempts=3, backoff_s=0.1)) as chowder:
        chowder.instances.get("i-1")
    assert 0.3 <= time.monotonic() - started < 2  # 0.1 + 0.2

    polite = Answers(503, 200, headers={"Retry-After": "0.5"})
    started = time.monotonic()
    with polite.client(Retries(attempts=3, backoff_s=0.01)) as chowder:
        chowder.instances.get("i-1")
    assert 0.5 <= time.monotonic() - started < 2

    capped = Retries(attempts=3, backoff_s=0.01, max_delay_s=0.05)
    assert capped.delay(routes.get_instance("i-1"), 0, httpx.Response(503, headers={"Retry-After": "3600"})) == 0.05


def test_events_are_decoded_line_by_line() -> None:
    decoder = EventDecoder()
    lines = [
        "event: response.output_text.delta",
        'data: {"type": "response.output_text.delta", "sequence_number": 1, "delta": "Hel"}',
        "",
        ": a comment",
        'data: {"type": "response.output_text.delta",',
        'data:"sequence_number": 2, "delta": "lo"}',
        "",
        'data: {"type": "response.completed", "sequence_number": 3, "response": {"id": "r", "status": "completed",',
        'data:  "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hello"}]}]}}',
        "",
        "data: [DONE]",
        "",
    ]
    events = [event for line in lines if (event := decoder.feed(line)) is not None]
    assert [e.delta for e in events] == ["Hel", "lo", None] and [e.sequence_number for e in events] == [1, 2, 3]
    assert decoder.done and decoder.final is not None and decoder.final.output_text == "Hello"


def test_download_names_prefer_the_utf8_form() -> None:
    assert file_name("attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt") == "résumé.txt"
    assert file_name('attachment; filename="plain.bin"') == "plain.bin"
    assert file_name("") is None


def test_an_answer_cut_off_midway_is_a_chowder_error() -> None:
    def broken() -> Iterator[bytes]:
        yield b'data: {"type": "response.output_text.delta", "delta": "Hel"}\n\n'
        raise httpx.ReadError("connection reset")

    transport = httpx.MockTransport(lambda _: httpx.Response(200, stream=_Broken(broken)))
    with Chowder("http://chowder.test", "chd_org_k", transport=transport) as chowder:
        deltas = []
        with pytest.raises(ChowderError, match="cut off: connection reset"):
            for event in chowder.responses.stream("i-1", "hi", model="m"):
                deltas.append(event.delta)
        assert deltas == ["Hel"]


class _Broken(httpx.SyncByteStream):
    def __init__(self, chunks: Callable[[], Iterator[bytes]]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()
