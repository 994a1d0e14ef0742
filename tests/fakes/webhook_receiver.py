"""A customer's webhook receiver, as a real HTTP server on 127.0.0.1 in a thread: it checks each delivery's
signature with the SDK's `verify_webhook`, applies each event once (it de-duplicates on the event id, as the
documentation tells receivers to) and answers what the test scripted (503 during an outage, 500 after applying as
when its answer is lost); it can go down and come back on the same port."""

from __future__ import annotations

import json
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chowder.client import WebhookSignatureError, verify_webhook
from chowder.core.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER


@dataclass(frozen=True)
class Received:
    event_id_header: str | None
    body: dict[str, Any]
    signature_valid: bool


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a worker's concurrent attempts are not refused at the listen backlog


class Receiver:
    def __init__(self, secret: str = "", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        """With `tls`, it serves https (for the host name of its certificate)."""
        self.secret = secret
        self.tls = tls
        self.received: list[Received] = []
        self.applied: Counter[str] = Counter()
        self.answers: list[int] = []  # the statuses of the next deliveries, in order; 200 once used up
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self.port = port
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(receiver.take(payload, self.headers))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Closed: connections to its port are refused until `up`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def take(self, payload: bytes, headers: Any) -> int:
        try:
            event = verify_webhook(payload, headers.get(SIGNATURE_HEADER, ""), self.secret)
            valid = True
        except WebhookSignatureError:
            valid = False
        body = json.loads(payload)
        with self._lock:
            self.received.append(Received(headers.get(EVENT_ID_HEADER), body, valid))
            if valid and event.id not in self.applied:  # de-duplicated: an event seen before is not applied again
                self.applied[event.id] += 1
            return self.answers.pop(0) if self.answers else 200

    def events(self) -> list[str]:
        with self._lock:
            return [item.body["type"] for item in self.received]
