"""Sessions on real gateways: a conversation read from OpenClaw's own store, exported from one instance,
imported into another (of another organization) and continued there, the model seeing the imported turns; then
forgotten; and a stopped instance's sessions read and written. Two gateways on the dev model (its echo names
every earlier user message it was sent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chowder.client import BadRequest, Chowder, Conflict, Forbidden, NotFound
from tests.e2e.harness import Server
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"
SESSION = "trip:42"


def _say(chowder: Chowder, instance_id: str, text: str, session: str = SESSION) -> str:
    return output_text(chowder.responses.create(instance_id, text, model=CLAUDE, session=session).model_dump())


def test_a_conversation_moves_to_another_instance_and_goes_on_there(
    server_factory: type[Server], data_dir: Path
) -> None:
    server = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
    server.start()
    keys = [signup(server.client, name, model_keys={}) for name in ("Origin", "Destination")]
    ids = [create_instance(server.client, key)["id"] for key in keys]
    for key, instance_id in zip(keys, ids, strict=True):
        body = server.wait_status(key, instance_id, {"running", "error"})
        assert body["status"] == "running", body["error_message"]
    origin, destination = (Chowder(server.url, key) for key in keys)
    source, target = ids

    assert _say(origin, source, "pack the tent").endswith("turns=1 msgs=1 last=pack the tent history=")
    assert "history=pack the tent" in _say(origin, source, "and the stove")
    listed = origin.sessions.list(source)
    assert [(s.session_id, s.message_count) for s in listed] == [(SESSION, 4)]  # the warm-up session is not shown
    assert listed[0].last_activity_at >= listed[0].created_at
    transcript = origin.sessions.get(source, SESSION)
    assert [m.text for m in transcript.messages][::2] == ["pack the tent", "and the stove"]
    assert [m.role for m in transcript.messages] == ["user", "assistant"] * 2
    assert transcript.messages[1].text.startswith(f"ECHO[{CLAUDE}] turns=1") and transcript.messages[1].model == CLAUDE

    export = origin.sessions.export(source, SESSION)
    lines = [json.loads(line) for line in export.splitlines()]
    assert (lines[0]["format"], lines[0]["version"], lines[0]["message_count"]) == ("chowder.session", 1, 4)
    assert [line["text"] for line in lines[1:]] == [m.text for m in transcript.messages]
    with pytest.raises(NotFound, match="Instance not found."):  # another organization's instance
        destination.sessions.list(source)

    imported = destination.sessions.import_(target, SESSION, export)
    assert (imported.session_id, imported.message_count) == (SESSION, 4)
    with pytest.raises(Conflict, match="already holds messages"):
        destination.sessions.import_(target, SESSION, export)
    with pytest.raises(BadRequest, match="Line 2: not valid JSON"):
        destination.sessions.import_(target, "other", export.splitlines()[0] + b"\n{broken\n")
    # The destination's model is sent the imported turns with the next one.
    answer = _say(destination, target, "and the map")
    assert answer.startswith(f"ECHO[{CLAUDE}] turns=3 msgs=5 last=and the map history=pack the tent|and the stove")
    assert destination.sessions.get(target, SESSION).message_count == 6
    assert origin.sessions.get(source, SESSION).message_count == 4  # the origin is untouched

    # A client tool's call and result travel too, and the session goes on from them.
    tool_turn = [
        {"role": "user", "timestamp": "2026-12-01T10:00:00Z", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "timestamp": "2026-12-01T10:00:01Z", "stop_reason": "toolUse", "content": [
            {"type": "toolCall", "id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"role": "toolResult", "timestamp": "2026-12-01T10:00:02Z", "tool_call_id": "call_1",
         "tool_name": "get_weather", "content": [{"type": "text", "text": "snow"}]},
        {"role": "assistant", "timestamp": "2026-12-01T10:00:03Z", "content": [{"type": "text", "text": "Snow."}]},
    ]  # fmt: skip
    header = {"format": "chowder.session", "version": 1}
    lines = b"".join(json.dumps(line).encode() + b"\n" for line in [header, *tool_turn])
    destination.sessions.import_(target, "tools", lines)
    assert _say(destination, target, "thanks", "tools").endswith("last=thanks history=weather?")
    assert [m.role for m in destination.sessions.get(target, "tools").messages][:4] == [
        "user", "assistant", "toolResult", "assistant"]  # fmt: skip

    reader = server.client.post(
        "/v1/keys", headers=auth(keys[1]), json={"name": "r", "instance_ids": [target], "permissions": ["read"]}
    ).json()["raw_key"]
    with pytest.raises(Forbidden, match="lacks the 'interact' permission"):
        Chowder(server.url, reader).sessions.list(target)

    destination.sessions.delete(target, SESSION)
    assert [s.session_id for s in destination.sessions.list(target)] == ["tools"]
    with pytest.raises(NotFound, match="Session not found."):
        destination.sessions.get(target, SESSION)
    with pytest.raises(NotFound, match="Session not found."):
        destination.sessions.delete(target, SESSION)
    # The gateway takes the forgotten session up afresh.
    assert _say(destination, target, "hello again").endswith("turns=1 msgs=1 last=hello again history=")

    # A stopped instance's sessions are read and written without its gateway; the next start continues them.
    origin.instances.stop(source)
    assert [(s.session_id, s.message_count) for s in origin.sessions.list(source)] == [(SESSION, 4)]
    assert origin.sessions.export(source, SESSION).splitlines()[1:] == export.splitlines()[1:]
    assert origin.sessions.import_(source, "Offline", export).message_count == 4
    origin.instances.start(source)
    # OpenClaw keys sessions in lower case: the import is the session chat names `Offline` too.
    answer = output_text(origin.responses.create(source, "and matches", model=CLAUDE, session="Offline").model_dump())
    assert answer.endswith("last=and matches history=pack the tent|and the stove")
    assert {s.session_id: s.message_count for s in origin.sessions.list(source)} == {SESSION: 4, "offline": 6}
