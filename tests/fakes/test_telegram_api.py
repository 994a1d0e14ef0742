"""The fake Bot API itself: authentication, the getUpdates long poll with offsets, and what the bot sent."""

from __future__ import annotations

import threading
import time

import httpx

from tests.fakes.telegram_api import FakeTelegramApi

TOKEN = "7001:test-token"


def test_wire_format_long_poll_and_offsets() -> None:
    with FakeTelegramApi(TOKEN) as bot, httpx.Client(base_url=f"{bot.url}/bot{TOKEN}") as api:
        me = api.post("/getMe").json()
        assert me["ok"] is True and me["result"]["id"] == 7001 and me["result"]["is_bot"] is True
        wrong = httpx.post(f"{bot.url}/bot1:nope/getMe")
        assert wrong.status_code == 401 and wrong.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
        assert api.post("/noSuchMethod").json()["error_code"] == 404
        assert api.post("/deleteWebhook", data={"drop_pending_updates": "false"}).json() == {"ok": True, "result": True}

        started = time.monotonic()
        threading.Timer(0.3, bot.send_dm, args=(42, "hi")).start()
        updates = api.post("/getUpdates", json={"offset": 0, "timeout": 5}).json()["result"]
        assert 0.2 < time.monotonic() - started < 3, "the long poll answers as soon as a message arrives"
        assert [u["message"]["text"] for u in updates] == ["hi"]
        assert updates[0]["message"]["chat"] == {
            "id": 42,
            "type": "private",
            "first_name": "User42",
            "username": "user42",
        }
        again = api.post("/getUpdates", json={"offset": updates[0]["update_id"], "timeout": 0}).json()["result"]
        assert again == updates, "unconfirmed updates are delivered again"
        confirmed = api.post("/getUpdates", json={"offset": updates[0]["update_id"] + 1, "timeout": 0}).json()
        assert confirmed["result"] == []

        sent = api.post("/sendMessage", json={"chat_id": 42, "text": "hello <b>you</b>", "parse_mode": "HTML"}).json()
        assert sent["result"]["chat"]["id"] == 42 and sent["result"]["text"] == "hello <b>you</b>"
        api.post("/editMessageText", json={"chat_id": "42", "message_id": sent["result"]["message_id"], "text": "bye"})
        assert bot.texts_to(42) == ["hello <b>you</b>", "bye"]
        assert bot.wait_for_reply(42, "bye", after=1, timeout_s=1) == "bye"


def test_stop_ends_a_pending_long_poll_quickly() -> None:
    bot = FakeTelegramApi(TOKEN).start()
    result: list[int] = []

    def poll() -> None:
        try:
            result.append(httpx.post(f"{bot.url}/bot{TOKEN}/getUpdates", json={"timeout": 30}, timeout=10).status_code)
        except httpx.HTTPError:
            result.append(0)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    started = time.monotonic()
    bot.stop()
    poller.join(timeout=10)
    assert time.monotonic() - started < 5 and result
