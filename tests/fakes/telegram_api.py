"""A fake Telegram Bot API on a loopback port, for driving OpenClaw's real Telegram channel offline
(`channels.telegram.apiRoot`, openclaw-runtime.md 13.1).

It speaks the Bot API's wire format (`POST /bot<token>/<method>`, JSON, form or query parameters; answers
`{"ok": true, "result": …}` or `{"ok": false, "error_code", "description"}`) for the methods the channel uses:
`getMe`, `getUpdates` (a real long poll with offsets), `sendMessage`, `editMessageText`, `getChat`, and the
acknowledgement-only ones. Tests play the user with `send_dm` and read what the bot said with `wait_for_reply`.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

# Methods whose Bot API result is just `true`.
ACKNOWLEDGED = frozenset(
    {
        "deleteWebhook",
        "setMyCommands",
        "deleteMyCommands",
        "setMyDescription",
        "setMyShortDescription",
        "setChatMenuButton",
        "sendChatAction",
        "setMessageReaction",
        "deleteMessage",
        "answerCallbackQuery",
    }
)


class FakeTelegramApi(LoopbackServer):
    """One bot (`token`); every call is kept in `calls` as (method, params)."""

    thread_name = "fake-telegram"

    def __init__(self, token: str, *, outside: bool = False) -> None:
        super().__init__(outside=outside)
        self.token = token
        self.bot = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Chowder Test Bot",
            "username": "chowder_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._updates: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"])])

    # --- the user's side -------------------------------------------------------------------------------------------

    def send_dm(self, user_id: int, text: str) -> None:
        """A private message from a user to the bot, delivered on the bot's next `getUpdates`."""
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "username": f"user{user_id}"}
        chat = {"id": user_id, "type": "private", "first_name": user["first_name"], "username": user["username"]}
        with self._lock:
            message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": user}
            self._updates.append({"update_id": next(self._update_ids), "message": {**message, "text": text}})

    def texts_to(self, chat_id: int) -> list[str]:
        """Everything the bot sent or edited into that chat, in order."""
        with self._lock:
            return [
                str(params.get("text", ""))
                for method, params in self.calls
                if method in ("sendMessage", "editMessageText") and str(params.get("chat_id")) == str(chat_id)
            ]

    def wait_for_reply(self, chat_id: int, contains: str, after: int = 0, timeout_s: float = 90) -> str:
        """The first text to `chat_id` past the first `after` ones that contains `contains`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for text in self.texts_to(chat_id)[after:]:
                if contains in text:
                    return text
            time.sleep(0.2)
        methods = [method for method, _ in self.calls]
        raise AssertionError(f"no reply with {contains!r} to {chat_id}: {self.texts_to(chat_id)}; calls {methods}")

    def called(self, method: str) -> bool:
        with self._lock:
            return any(name == method for name, _ in self.calls)

    # --- the bot's side --------------------------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await _params(request)
        with self._lock:
            self.calls.append((method, params))
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        if method == "getMe":
            return _ok(self.bot)
        if method in ("sendMessage", "editMessageText"):
            return _ok(self._message(params))
        if method == "getChat":
            return _ok({"id": int(params["chat_id"]), "type": "private"})
        if method in ACKNOWLEDGED:
            return _ok(True)
        return _error(404, "Not Found: method not found")

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Confirms (drops) updates below `offset`, then long-polls up to `timeout` seconds for newer ones."""
        offset = int(params.get("offset", 0))
        limit = int(params.get("limit", 100))
        with self._lock:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        await self.pause(float(params.get("timeout", 0)), until=lambda: bool(self._updates))
        with self._lock:
            return self._updates[:limit]

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        message_id = int(params["message_id"]) if "message_id" in params else next(self._message_ids)
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": self.bot,
            "text": str(params.get("text", "")),
        }


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.json()
        params.update(body if isinstance(body, dict) else {})
    elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        params.update({key: value for key, value in (await request.form()).items() if isinstance(value, str)})
    return params


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": code, "description": description}, status_code=code)
