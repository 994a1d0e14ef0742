"""Log lines (extension): one access line per request, and in JSON form each line one object holding the
request id the answer carried and the access line's fields."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from chowder.core.logs import JsonLines
from tests.factories import auth, signup

pytestmark = pytest.mark.persistence


def test_each_request_logs_one_json_line_with_its_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chowder.access")
    key = signup(client)
    formatter = JsonLines()
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))  # formatted where it was logged: the request's context

    capture = Capture()
    logging.getLogger("chowder.access").addHandler(capture)
    try:
        answer = client.get("/v1/organization", headers=auth(key) | {"X-Request-Id": "trace-7"})
    finally:
        logging.getLogger("chowder.access").removeHandler(capture)
    assert answer.headers["x-request-id"] == "trace-7"
    [line] = [json.loads(line) for line in lines]
    assert line["request_id"] == "trace-7" and line["level"] == "INFO" and line["logger"] == "chowder.access"
    assert (line["method"], line["route"], line["path"], line["status"]) == (
        "GET",
        "/v1/organization",
        "/v1/organization",
        200,
    )
    assert line["duration_ms"] >= 0 and line["message"].startswith("GET /v1/organization 200 ")


def test_a_request_without_an_id_gets_a_new_one(client: TestClient) -> None:
    first, second = client.get("/healthz"), client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert len(first.headers["x-request-id"]) == 32
    assert second.headers["x-request-id"] not in {"bad id with spaces", first.headers["x-request-id"]}
