"""Sleep when idle and wake on the next call, on a real gateway: awake → frozen → asleep with no traffic, a chat
at each stage answered with the memory of the earlier turns, three concurrent chats waking an asleep instance
once, an enabled channel keeping it awake, sleep on a host with swap paging the gateway out (a thaw wakes it,
in seconds), and an explicit stop unchanged (409 on chat)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.harness import RunningInstance, gateway_pids, running_instance
from tests.e2e.swap import host_swap, swap_active, swapped_and_resident_kib
from tests.factories import auth, output_text
from tests.fakes.telegram_api import FakeTelegramApi

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"
AUTO_STOP = {"freeze_after_s": 2, "stop_after_s": 6}


@pytest.fixture(scope="module")
def sleepy() -> Iterator[RunningInstance]:
    """Every new instance sleeps when idle (the server's defaults), on the dev model."""
    with running_instance(
        "Sleepy", CHOWDER_DEV_MODEL="1", CHOWDER_FREEZE_AFTER_S="2", CHOWDER_STOP_AFTER_S="6"
    ) as inst:
        yield inst


def _instance(inst: RunningInstance) -> dict[str, Any]:
    body: dict[str, Any] = inst.server.client.get(inst.base, headers=auth(inst.key)).json()
    return body


def _until_power(inst: RunningInstance, power: str, timeout_s: float = 30) -> dict[str, Any]:
    """Watches without calling the gateway (reading an instance is not a use of it)."""
    deadline = time.monotonic() + timeout_s
    while (body := _instance(inst))["power"] != power:
        assert time.monotonic() < deadline, f"never {power}: {body}"
        time.sleep(0.2)
    return body


def _say(inst: RunningInstance, text: str, session: str | None = None) -> tuple[str, float]:
    path = f"{inst.base}/session/{session}/responses" if session else f"{inst.base}/responses"
    started = time.monotonic()
    response = inst.server.client.post(path, headers=auth(inst.key), json={"model": CLAUDE, "input": text})
    assert response.status_code == 200, response.text
    return output_text(response.json()), time.monotonic() - started


def _turns(reply: str) -> int:
    """The dev model counts the user turns of the conversation it is sent."""
    found = re.search(r"turns=(\d+)", reply)
    assert found, reply
    return int(found[1])


def _answers(gateway_url: str) -> bool:
    try:
        return httpx.get(f"{gateway_url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_idle_instance_freezes_then_sleeps_and_every_stage_answers_with_its_memory(sleepy: RunningInstance) -> None:
    assert _instance(sleepy)["auto_stop"] == AUTO_STOP, "the server's defaults apply to a new instance"
    first, _ = _say(sleepy, "remember the word chowder")
    assert _turns(first) == 1

    frozen = _until_power(sleepy, "frozen", timeout_s=15)
    assert frozen["status"] == "running"
    gateway = frozen["gateway_url"]
    assert gateway_pids(gateway), "a frozen gateway keeps its processes (and memory)"
    assert not _answers(gateway), "a frozen gateway gets no CPU: it cannot answer"
    asleep = _until_power(sleepy, "asleep", timeout_s=15)
    assert asleep["status"] == "running"
    deadline = time.monotonic() + 15  # recorded asleep first, then stopped (SIGTERM, its grace)
    while gateway_pids(gateway) and not swap_active():  # with swap, paged out instead (the test below)
        assert time.monotonic() < deadline, "an asleep gateway is stopped"
        time.sleep(0.2)

    reply, _ = _say(sleepy, "what was the word?")
    assert _turns(reply) == 2 and "remember the word chowder" in reply, reply
    assert _instance(sleepy)["power"] == "awake"

    _until_power(sleepy, "frozen", timeout_s=15)
    reply, thawed_in = _say(sleepy, "and again?")
    assert _turns(reply) == 3 and "what was the word?" in reply, reply
    assert thawed_in < 10, f"a turn on a frozen instance took {thawed_in:.1f} s (bench/targets.py measures it)"


def test_concurrent_chats_to_an_asleep_instance_wake_it_once(sleepy: RunningInstance) -> None:
    _until_power(sleepy, "asleep", timeout_s=30)
    wakes_before = sleepy.server.log_text().count(f"instance {sleepy.instance_id}: waking")
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda n: _say(sleepy, f"hello from {n}", session=f"caller-{n}")[0], range(3)))
    assert all(_turns(reply) == 1 for reply in replies), replies
    wakes = sleepy.server.log_text().count(f"instance {sleepy.instance_id}: waking") - wakes_before
    assert wakes == 1, f"{wakes} wakes for three concurrent calls"


def test_an_instance_with_an_enabled_channel_never_sleeps(sleepy: RunningInstance, outside: str) -> None:
    client, base = sleepy.server.client, f"{sleepy.base}/channels/telegram"
    with FakeTelegramApi("7002:chowder-sleepy-token", outside=True) as bot:
        connected = client.post(
            f"{base}/connect", headers=auth(sleepy.key), json={"config": {"token": bot.token, "apiRoot": bot.url}}
        )
        assert connected.status_code == 200, connected.text
        time.sleep(AUTO_STOP["stop_after_s"] + 4)
        kept = _instance(sleepy)
        assert kept["power"] == "awake", f"an instance with an enabled channel slept: {kept}"
        disconnected = client.post(f"{base}/disconnect", headers=auth(sleepy.key))
        assert disconnected.status_code == 204, disconnected.text
    _until_power(sleepy, "frozen", timeout_s=15)


def test_with_swap_an_asleep_instance_is_paged_out_and_a_thaw_wakes_it(sleepy: RunningInstance) -> None:
    first, _ = _say(sleepy, "remember the word paging", session="paged")
    assert _turns(first) == 1
    with host_swap() as swap:
        if not swap:
            pytest.skip("the host has no swap and no unused zram device (/sys/block/zram0) to make one")
        asleep = _until_power(sleepy, "asleep", timeout_s=30)
        pids = gateway_pids(asleep["gateway_url"])
        assert pids, "paged out, not stopped: its processes are there"
        swapped, resident = swapped_and_resident_kib(pids)
        assert swapped > 200 * 1024 and resident < swapped / 2, f"{swapped} KiB in swap, {resident} KiB resident"
        wakes_before = sleepy.server.log_text().count(f"instance {sleepy.instance_id}: waking")
        reply, woke_in = _say(sleepy, "what was the word?", session="paged")
        assert _turns(reply) == 2 and "remember the word paging" in reply, reply
        assert woke_in < 10, f"a turn on a paged-out instance took {woke_in:.1f} s (bench/targets.py measures it)"
        assert sleepy.server.log_text().count(f"instance {sleepy.instance_id}: waking") == wakes_before, "no boot"
        assert gateway_pids(asleep["gateway_url"]) == pids, "the same gateway processes, thawed"
        assert _instance(sleepy)["power"] == "awake"


def test_an_explicit_stop_is_still_a_stop(sleepy: RunningInstance) -> None:
    client = sleepy.server.client
    stopped = client.post(f"{sleepy.base}/stop", headers=auth(sleepy.key))
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped" and stopped.json()["power"] is None
    chat = client.post(f"{sleepy.base}/responses", headers=auth(sleepy.key), json={"model": CLAUDE, "input": "hi"})
    assert chat.status_code == 409, chat.text
    time.sleep(AUTO_STOP["stop_after_s"] + 1)
    assert _instance(sleepy)["status"] == "stopped", "idleness never starts a stopped instance"
