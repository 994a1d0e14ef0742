"""Usage read off each protocol's answers, and recorded and summed on a real database."""

from __future__ import annotations

import asyncio
import json

import pytest

from chowder.core.clock import utcnow
from chowder.core.pagination import BreakdownPage
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
def test_cells_group_by_two_columns_and_filter(database_url: str) -> None:
    db = Database(database_url)
    migrate(db.engine)
    tx = SqlTransactions(db)
    org_id = new_org(tx, "Usage Co")

    def record(uow: UnitOfWork) -> None:
        for instance, sess, key, tokens in (("i", "a", "k1", 10), ("i", "a", "k1", 20), ("i", "b", "k1", 5)):
            uow.usage.record(UsageEvent(org_id, instance, sess, key, "anthropic", "claude", tokens, 1), utcnow())
        uow.usage.record(UsageEvent(org_id, "j", "a", None, "openai", "gpt", 4, 2), utcnow())

    def check(uow: UnitOfWork) -> None:
        cells = uow.usage.cells(org_id, ("session_id", "key_id"), None, None)
        by_cell = {cell.groups: (cell.requests, cell.input_tokens, cell.output_tokens) for cell in cells}
        assert by_cell == {("a", "k1"): (2, 30, 2), ("b", "k1"): (1, 5, 1), ("a", None): (1, 4, 2)}
        one_instance = uow.usage.cells(org_id, ("model", "key_id"), None, None, "i")
        assert [(cell.groups, cell.requests) for cell in one_instance] == [(("claude", "k1"), 3)]
        assert uow.usage.cells("another-org", ("session_id", "key_id"), None, None) == []

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
    report = asyncio.run(UsageReports(tx).of_organization(org_id, None, None, BreakdownPage()))
    assert (report.total.requests, report.total.input_tokens, report.total.output_tokens) == (4, 42, 8)
    assert [(t.group, t.input_tokens) for t in report.instances] == [("i1", 30), ("i2", 12)]
    assert [(t.group, t.requests) for t in report.keys] == [(None, 1), ("k1", 2), ("k2", 1)], "no key first"
    empty = asyncio.run(UsageReports(tx).of_organization("nobody", None, None, BreakdownPage()))
    assert (empty.total.requests, empty.instances, empty.keys) == (0, [], [])
    db.dispose()
