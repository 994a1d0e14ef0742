"""`auto_stop` and `power` (extension) through the API, without the engine: defaults, validation, PATCH, and what
`power` shows in each status."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chowder.core.settings import Settings
from tests.api.conftest import client_for, sql
from tests.conftest import SHARED_RUNTIME
from tests.factories import auth, create_instance, signup

pytestmark = pytest.mark.persistence

AUTO_STOP = {"freeze_after_s": 60, "stop_after_s": 600}


def test_auto_stop_is_off_unless_asked_for(client: TestClient) -> None:
    body = create_instance(client, signup(client, "Plain"))
    assert (body["auto_stop"], body["power"]) == (None, None), "provisioning: no power yet"
    assert create_instance(client, signup(client, "Sleepy"), auto_stop=AUTO_STOP)["auto_stop"] == AUTO_STOP


def test_the_server_default_applies_unless_the_create_says_null(data_dir: Path, database_url: str) -> None:
    settings = Settings(
        data_dir=data_dir, database_url=database_url, runtime_dir=SHARED_RUNTIME, freeze_after_s=30, stop_after_s=300
    )
    with client_for(settings) as client:
        defaulted = create_instance(client, signup(client, "Defaulted"))
        assert defaulted["auto_stop"] == {"freeze_after_s": 30, "stop_after_s": 300}
        assert create_instance(client, signup(client, "Never"), auto_stop=None)["auto_stop"] is None


@pytest.mark.parametrize(
    ("auto_stop", "status", "detail"),
    [
        ({"freeze_after_s": 1, "stop_after_s": 60}, 400, "auto_stop.freeze_after_s must be between 2 and 2592000"),
        ({"freeze_after_s": 60, "stop_after_s": 10**9}, 400, "auto_stop.stop_after_s must be between 2 and 2592000"),
        ({"freeze_after_s": 60, "stop_after_s": 30}, 400, "auto_stop.freeze_after_s must not exceed"),
        ({"freeze_after_s": 60}, 422, None),
        ({"freeze_after_s": 60, "stop_after_s": 600, "later": 1}, 422, None),
    ],
)
def test_auto_stop_is_validated(client: TestClient, auto_stop: dict[str, int], status: int, detail: str | None) -> None:
    key = signup(client)
    response = client.post("/v1/instances", headers=auth(key), json={"name": "a", "auto_stop": auto_stop})
    assert response.status_code == status, response.text
    if detail:
        assert detail in response.json()["detail"]
    assert client.get("/v1/instances", headers=auth(key)).json() == [], "nothing is created"


def test_patch_sets_and_clears_auto_stop_and_restarts_the_idle_clock(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    sql(
        settings,
        "UPDATE instances SET status = 'running', gateway_url = 'http://127.0.0.1:9' WHERE id = :i",
        i=instance_id,
    )

    patched = client.patch(f"/v1/instances/{instance_id}", headers=auth(key), json={"auto_stop": AUTO_STOP})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["auto_stop"], patched.json()["power"]) == (AUTO_STOP, "awake")
    deadlines = sql(settings, "SELECT idle_freeze_at, idle_stop_at FROM instances WHERE id = :i", i=instance_id)
    assert deadlines[0] is not None and deadlines[1] is not None

    renamed = client.patch(f"/v1/instances/{instance_id}", headers=auth(key), json={"name": "kept"})
    assert renamed.json()["auto_stop"] == AUTO_STOP, "a PATCH without auto_stop leaves it as it is"
    cleared = client.patch(f"/v1/instances/{instance_id}", headers=auth(key), json={"auto_stop": None})
    assert cleared.json()["auto_stop"] is None
    deadlines = sql(settings, "SELECT idle_freeze_at, idle_stop_at FROM instances WHERE id = :i", i=instance_id)
    assert tuple(deadlines) == (None, None)


def test_power_shows_asleep_while_waking_and_nothing_unless_running(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    instance_id = create_instance(client, key)["id"]
    for status, power, shown in [
        ("running", "waking", "asleep"),
        ("running", "frozen", "frozen"),
        ("stopped", "asleep", None),
    ]:
        sql(settings, "UPDATE instances SET status = :s, power = :p WHERE id = :i", s=status, p=power, i=instance_id)
        assert client.get(f"/v1/instances/{instance_id}", headers=auth(key)).json()["power"] == shown
