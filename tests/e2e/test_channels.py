"""A real Telegram channel, end to end, against a fake Bot API the test starts (`apiRoot`): connect, live status
from the gateway, a stranger's DM answered with a pairing code, approval, then the model answers."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.harness import PROVIDERS, RunningInstance, provider_env, running_instance
from tests.factories import auth, scoped_key
from tests.fakes.telegram_api import FakeTelegramApi

pytestmark = pytest.mark.e2e

USER = 424242
# The dev model's reply ends with `history=<earlier turns>` (OpenClaw trims the start of the echo before
# delivering it to Telegram): a text only the model writes.
ECHOED = "history="


@dataclass
class TelegramEnv:
    inst: RunningInstance
    bot: FakeTelegramApi


@pytest.fixture(scope="module", params=PROVIDERS)
def telegram(request: pytest.FixtureRequest, outside: str) -> Iterator[TelegramEnv]:
    """The Bot API where Telegram's would be for the agent: outside its sandbox and the host, reached by egress."""
    with (
        FakeTelegramApi("7001:chowder-fake-token", outside=True) as bot,
        running_instance("Channels", CHOWDER_DEV_MODEL="1", **provider_env(request)) as inst,
    ):
        yield TelegramEnv(inst, bot)


def test_telegram_connect_pair_and_chat(telegram: TelegramEnv) -> None:
    inst, bot = telegram.inst, telegram.bot
    client, base = inst.server.client, f"{inst.base}/channels/telegram"
    channels_only = auth(scoped_key(client, inst.key, [inst.instance_id], ["channels"]))
    configure_only = auth(scoped_key(client, inst.key, [inst.instance_id], ["configure"]))

    connected = client.post(
        f"{base}/connect", headers=channels_only, json={"config": {"token": bot.token, "apiRoot": bot.url}}
    )
    assert connected.status_code == 200, connected.text
    assert connected.json()["status"] == "connected"
    deadline = time.monotonic() + 90
    while not (status := client.get(f"{base}/status", headers=channels_only).json())["connected"]:
        assert time.monotonic() < deadline, f"never connected: {status}"
        time.sleep(0.5)
    assert status["enabled"] is True and status["details"]["lifecycle"] == "ready"
    assert bot.called("getMe") and bot.called("getUpdates")

    model_calls = _model_calls(inst)
    bot.send_dm(USER, "hello, who are you?")
    greeting = bot.wait_for_reply(USER, "Pairing code")
    code = re.search(r"pairing approve telegram ([A-Z0-9]{8})", greeting)
    assert code, greeting
    assert not any(ECHOED in text for text in bot.texts_to(USER)), "an unpaired stranger never reaches the model"

    unknown = client.post(f"{base}/pair", headers=channels_only, json={"code": "ZZZZZZZZ"})
    assert unknown.status_code == 404 and "No pending pairing request" in unknown.json()["detail"], unknown.text
    assert client.post(f"{base}/pair", headers=configure_only, json={"code": code[1]}).status_code == 403
    assert client.post(f"{base}/pair", headers=channels_only, json={"code": "--help"}).status_code == 422
    paired = client.post(f"{base}/pair", headers=channels_only, json={"code": code[1]})
    assert paired.status_code == 200, paired.text
    body = paired.json()
    assert (body["channel"], body["code"], body["status"]) == ("telegram", code[1], "paired")
    assert str(USER) in body["output"]

    # Pairing took the CLI its ~10 s, longer than a model reply takes: had the stranger's DM reached the model,
    # its call would have been metered and its answer delivered by now.
    assert _model_calls(inst) == model_calls, "an unpaired stranger's DM made a model call"
    sent = len(bot.texts_to(USER))
    assert not any(ECHOED in text for text in bot.texts_to(USER)), "an unpaired stranger got the model's answer"
    bot.send_dm(USER, "what is in the chowder today")
    reply = bot.wait_for_reply(USER, ECHOED, after=sent)
    assert "what is in the chowder today" in reply, reply
    assert _model_calls(inst) > model_calls, "the paired user's turn is metered"


def _model_calls(inst: RunningInstance) -> int:
    usage = inst.server.client.get(f"{inst.base}/usage", headers=auth(inst.key)).json()
    calls: int = usage["total"]["requests"]
    return calls


# The provider shapes only the sandbox's network, which the Telegram test and the isolation suite cover on each:
# the two channel plugins below are the gateway's own business, so one provider is enough for them.
@pytest.mark.parametrize("telegram", ["process"], indirect=True)
def test_whatsapp_connect_asks_the_gateway_for_its_login_qr(telegram: TelegramEnv) -> None:
    """The plugin ships with the runtime (no install); the QR exists only once WhatsApp's servers answer the
    gateway, so without egress the answer is a 502 in the gateway's own words, and the channel stays configured."""
    inst = telegram.inst
    client, headers = inst.server.client, auth(inst.key)
    response = client.post(f"{inst.base}/channels/whatsapp/connect", headers=headers, json={})
    if response.status_code == 200:
        body = response.json()
        assert body["status"] == "awaiting_scan" and "qr_data" in body
        assert base64.b64decode(body["qr_image_base64"]).startswith(b"\x89PNG")
    else:
        assert response.status_code == 502, response.text
        assert response.json()["detail"].startswith("WhatsApp login failed"), response.text
    listed = {c["channel"]: c["enabled"] for c in client.get(f"{inst.base}/channels", headers=headers).json()}
    assert listed["whatsapp"] is True


@pytest.mark.parametrize("telegram", ["process"], indirect=True)
def test_a_plugin_channel_loads_from_the_runtime_and_reports_the_services_answer(telegram: TelegramEnv) -> None:
    """Discord ships as an official plugin package in the runtime cache: connecting installs nothing, the
    gateway trusts and starts it, and its status carries what discord.com answered (here: no route to it)."""
    inst = telegram.inst
    client, headers = inst.server.client, auth(inst.key)
    base = f"{inst.base}/channels/discord"
    connected = client.post(f"{base}/connect", headers=headers, json={"config": {"token": "MTIz.fake.token"}})
    assert connected.status_code == 200, connected.text
    deadline = time.monotonic() + 60
    while "lastError" not in (status := client.get(f"{base}/status", headers=headers).json())["details"]:
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status["enabled"] is True and status["connected"] is False
    assert "trusted" not in status["details"]["lastError"], status
