"""Request body limits at the API: 413 with a JSON detail whether the body declares its length or streams
chunked, before more than the limit is read; the chat, model and file routes take their larger limits."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message

from chowder.api.internal import create_internal_app
from chowder.core.settings import MIB
from tests.factories import auth, create_instance, signup

OVER = {"detail": "The request body exceeds the 1 MiB limit of this endpoint."}


def _json_of_size(size: int) -> bytes:
    return json.dumps({"name": "x" * (size - 12)}).encode()


async def _post_chunked(
    app: ASGIApp, path: str, chunks: int, http_version: str = "1.1"
) -> tuple[tuple[int, object], int]:
    """POST `chunks` chunks of 64 KiB without a Content-Length, straight to the ASGI app (the test client
    would read the whole body first): the status and JSON answer, and how many chunks the app read. HTTP/1 sends
    them chunked; HTTP/2 frames a body without any header saying so."""
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b" " * (64 * 1024), "more_body": read < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")]
        + ([(b"transfer-encoding", b"chunked")] if http_version.startswith("1") else []),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (sent[0]["status"], json.loads(body)), read


def test_a_json_body_over_the_limit_is_413_declared_or_chunked(client: TestClient) -> None:
    declared = client.post("/v1/organization/signup", content=_json_of_size(2 * MIB))
    assert (declared.status_code, declared.json()) == (413, OVER)

    chunked, read = client.portal.call(_post_chunked, client.app, "/v1/organization/signup", 64)
    assert chunked == (413, OVER)
    assert read == 17, "reading stopped at the chunk that crossed the limit"
    unframed, read = client.portal.call(_post_chunked, client.app, "/v1/organization/signup", 64, "2")
    assert (unframed, read) == ((413, OVER), 17), "an HTTP/2 body that declares no length is counted too"

    under = client.post("/v1/organization/signup", content=_json_of_size(MIB - 1024))
    assert under.status_code == 422, "just under the limit, the body reaches the route"


def test_chat_model_and_file_routes_take_their_larger_limits(client: TestClient) -> None:
    key = signup(client)
    base = f"/v1/instances/{create_instance(client, key)['id']}"
    big = {"model": "claude-x", "input": "x" * (2 * MIB)}
    for path in (f"{base}/responses", f"{base}/session/s1/responses"):
        response = client.post(path, headers=auth(key), json=big)
        assert response.status_code == 409, path  # past the limit: the instance is not running yet
    write = client.put(f"{base}/files/content", headers=auth(key), json={"path": "a.txt", "content": "x" * 2 * MIB})
    assert write.status_code == 409
    with TestClient(create_internal_app(client.app.state.chowder)) as model_client:  # type: ignore[attr-defined]
        model = model_client.post("/model/anthropic/v1/messages", content=b"{}" + b" " * (2 * MIB))
        assert model.status_code == 401
        too_big = model_client.post("/model/anthropic/v1/messages", content=b" " * (33 * MIB))
        assert too_big.status_code == 413
    elsewhere = client.patch("/v1/organization", headers=auth(key), json=big)
    assert (elsewhere.status_code, elsewhere.json()) == (413, OVER)
