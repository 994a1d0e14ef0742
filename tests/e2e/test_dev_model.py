"""The README quickstart with the built-in dev model: a real server and gateway, and no model key at all."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from chowder.core.ids import sandbox_id_for
from tests.e2e.harness import Server, sandbox_processes
from tests.factories import auth, create_instance, output_text, signup

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"


def test_chat_with_the_dev_model_and_no_model_key(server_factory: type[Server], data_dir: Path) -> None:
    server = server_factory(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
    server.start()
    assert "DEV MODEL ON" in server.log_text()
    client = server.client
    key = signup(client, "Dev", model_keys={})
    instance_id = create_instance(client, key)["id"]
    body = server.wait_status(key, instance_id, {"running", "error"})
    assert body["status"] == "running", body["error_message"]

    for turn in (1, 2):
        response = client.post(
            f"/v1/instances/{instance_id}/responses", headers=auth(key), json={"model": CLAUDE, "input": "hello"}
        )
        assert response.status_code == 200, response.text
        text = output_text(response.json())
        assert text.startswith(f"ECHO[{CLAUDE}] turns={turn} ") and "last=hello" in text, text
        assert re.search(r"history=(hello)?$", text), text

    usage = client.get(f"/v1/instances/{instance_id}/usage", headers=auth(key)).json()
    assert usage["total"]["requests"] >= 2
    assert usage["total"]["input_tokens"] > 0 and usage["total"]["output_tokens"] > 0
    assert CLAUDE in {m["model"] for m in usage["models"]}

    assert client.delete(f"/v1/instances/{instance_id}", headers=auth(key)).status_code == 204
    sandbox_dir = data_dir / "sandboxes" / sandbox_id_for(instance_id)
    deadline = time.monotonic() + 60
    while (sandbox_dir.exists() or sandbox_processes(sandbox_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sandbox_dir.exists() and sandbox_processes(sandbox_dir) == []
