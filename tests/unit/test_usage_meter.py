"""Usage read off each protocol's answers, and recorded and summed on a real database."""

from __future__ import annotations

import asyncio
import json

import pytest

from chowder.core.clock import utcnow
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.tenancy import UsageEvent
from chowder.domain.usage import UsageReports
from chowder.modelgw.usage import UsageMeter, model_of
from chowder.persistence.db import Database, migrate
from chowder.persistence.store import SqlTransactions
from tests.factories import new_org


def _sse(*events: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            _sse(
                {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}},
                {"type": "message_delta", "usage": {"output_tokens": 7}},
            ),
            (12, 7),
        ),
        (
            _sse(
                {"type": "response.in_progress", "response": {"usage": None}},
                {"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 3}}},
            ),
            (5, 3),
        ),
        (
            _sse(
                {"choices": [{"delta": {"content": "hi"}}]},
                {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
            )
            + b"data: [DONE]\n\n",
            (9, 4),
        ),
        (json.dumps({"usage": {"input_tokens": 2, "output_tokens": 8}}).encode(), (2, 8)),
        # Anthropic's prompt cache: written and read tokens are input besides `input_tokens`.
        (
            _sse(
                {
                    "type": "message_start",
                    "message": {
                        "usage": {
                            "input_tokens": 3,
                            "cache_creation_input_tokens": 1000,
                            "cache_read_input_tokens": 20000,
                            "output_tokens": 1,
                        }
                    },
                },
                {"type": "message_delta", "usage": {"output_tokens": 7}},
            ),
            (21003, 7),
        ),
        (
            json.dumps(
                {"usage": {"input_tokens": 4, "cache_read_input_tokens": 96, "cache_creation_input_tokens": None}}
            ).encode(),
            (100, 0),
        ),
    ],
)
def test_meter_reads_every_protocol_even_split_across_chunks(answer: bytes, expected: tuple[int, int]) -> None:
    meter = UsageMeter()
    for i in range(0, len(answer), 7):
        meter.feed(answer[i : i + 7])
    meter.finish()
    assert (meter.input_tokens, meter.output_tokens) == expected


def test_a_line_over_the_bound_is_skipped_and_metering_goes_on() -> None:
    meter = UsageMeter()
    meter.feed(b'data: {"junk": "')
    for _ in range(80):  # 5 MiB without a newline
        meter.feed(b"x" * 65536)
    meter.feed(b'"}\n\n' + _sse({"type": "message_delta", "usage": {"input_tokens": 3, "output_tokens": 9}}))
    meter.finish()
    assert (meter.input_tokens, meter.output_tokens) == (3, 9)


def test_the_model_comes_from_the_request() -> None:
    body = json.dumps({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}).encode()
    assert model_of(body) == "claude-x"
    assert model_of(b"{oops") == "unknown"


@pytest.mark.persistence
def test_totals_group_and_filter(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    tx = SqlTransactions(db)
    org_id = new_org(tx, "Usage Co")

    def record(uow: UnitOfWork) -> None:
        for sess, key, tokens in (("a", "k1", 10), ("a", "k2", 20), ("b", "k1", 5)):
            uow.usage.record(UsageEvent(org_id, "inst", sess, key, "anthropic", "claude", tokens, 1), utcnow())

    def check(uow: UnitOfWork) -> None:
        total = uow.usage.totals(org_id, None, None, None)[0]
        assert (total.requests, total.input_tokens, total.output_tokens, total.total_tokens) == (3, 35, 3, 38)
        by_session = {t.group: t.input_tokens for t in uow.usage.totals(org_id, "session_id", None, None)}
        assert by_session == {"a": 30, "b": 5}
        by_key = {t.group: t.requests for t in uow.usage.totals(org_id, "key_id", None, None, "inst")}
        assert by_key == {"k1": 2, "k2": 1}
        assert uow.usage.totals("another-org", None, None, None)[0].requests == 0

    tx.run_sync(record)
    tx.run_sync(check)
    db.dispose()


@pytest.mark.persistence
def test_a_report_rolls_its_total_and_breakdowns_up_from_the_same_events(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    tx = SqlTransactions(db)
    org_id = new_org(tx, "Report Co")
    events = (("i1", "s", None, 10), ("i1", "s", "k1", 20), ("i2", "t", "k1", 5), ("i2", None, "k2", 7))

    def record(uow: UnitOfWork) -> None:
        for instance, session, key, tokens in events:
            uow.usage.record(UsageEvent(org_id, instance, session, key, "anthropic", "claude", tokens, 2), utcnow())

    tx.run_sync(record)
    report = asyncio.run(UsageReports(tx).of_organization(org_id, None, None))
    assert (report.total.requests, report.total.input_tokens, report.total.output_tokens) == (4, 42, 8)
    assert [(t.group, t.input_tokens) for t in report.instances] == [("i1", 30), ("i2", 12)]
    assert [(t.group, t.requests) for t in report.keys] == [(None, 1), ("k1", 2), ("k2", 1)], "no key first"
    empty = asyncio.run(UsageReports(tx).of_organization("nobody", None, None))
    assert (empty.total.requests, empty.instances, empty.keys) == (0, [], [])
    db.dispose()
