"""The outside world for end-to-end tests: a network namespace the tests make, holding 198.51.100.2 (TEST-NET-2),
with the host's route to a /30 around it leading only into it. A sandbox with open egress reaches a server there the
way it would reach the internet (forwarded, masqueraded), and no packet ever leaves the machine.

While it exists, the host reaches nothing else at those four addresses, so it is kept small and refused where the
host already routes any of them somewhere other than its default route. A run ended mid-test leaves it behind:
`./dev test` removes it first, before it installs anything (on one machine here the package registries sat in
TEST-NET-3, which an earlier /24 of this namespace once cut off)."""

from __future__ import annotations

import ctypes
import http.server
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

NETNS = "chowder-test-outside"
LINK = "chtout0"  # not chw*: that prefix names the sandboxes' links, which the sandbox policy treats apart
HOST_ADDRESS, ADDRESS, PREFIX = "198.51.100.1", "198.51.100.2", "198.51.100.0/30"
_CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@contextmanager
def outside_network() -> Iterator[str]:
    """The namespace (made afresh, removed after, its veth with it); yields the address servers there use."""
    subprocess.run(["ip", "netns", "delete", NETNS], capture_output=True)
    _refuse_taken_prefix()
    _ip("netns", "add", NETNS)
    try:
        _ip("link", "add", LINK, "type", "veth", "peer", "name", "eth0", "netns", NETNS)
        _ip("addr", "add", f"{HOST_ADDRESS}/30", "dev", LINK)
        _ip("link", "set", LINK, "up")
        _ip("-n", NETNS, "addr", "add", f"{ADDRESS}/30", "dev", "eth0")
        _ip("-n", NETNS, "link", "set", "eth0", "up")
        _ip("-n", NETNS, "link", "set", "lo", "up")
        yield ADDRESS
    finally:
        subprocess.run(["ip", "netns", "delete", NETNS], capture_output=True)


def _refuse_taken_prefix() -> None:
    """Fails rather than take over addresses the host already routes on purpose (a LAN, a proxy, a VPN)."""
    taken = [
        route["dst"]
        for selector in ("match", "root")  # the routes covering the prefix, and those inside it
        for route in json.loads(
            subprocess.run(
                ["ip", "-j", "route", "show", selector, PREFIX], check=True, capture_output=True, text=True, timeout=20
            ).stdout
            or "[]"
        )
        if route["dst"] != "default"
    ]
    if taken:
        raise RuntimeError(f"the host already routes {PREFIX} ({', '.join(taken)}): the tests' outside needs it free")


def bind_outside(port: int = 0) -> socket.socket:
    """A TCP socket bound in the outside namespace: made by a short-lived thread that enters the namespace (only
    that thread moves), so this process can serve there from any thread."""
    made: dict[str, socket.socket | BaseException] = {}

    def enter_and_bind() -> None:
        try:
            fd = os.open(f"/run/netns/{NETNS}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {NETNS}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((ADDRESS, port))
            made["socket"] = sock
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            made["error"] = exc

    thread = threading.Thread(target=enter_and_bind, name="bind-outside")
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]  # type: ignore[misc]
    return made["socket"]  # type: ignore[return-value]


@contextmanager
def answering(sock: socket.socket) -> Iterator[int]:
    """An HTTP server answering every GET with 200 on a bound socket (in any namespace), in a thread; its port."""
    server = http.server.ThreadingHTTPServer(sock.getsockname(), http.server.BaseHTTPRequestHandler, False)
    server.socket.close()
    server.socket = sock
    server.RequestHandlerClass = _Ok
    sock.listen()
    thread = threading.Thread(target=server.serve_forever, name="answering", daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the handler's protocol)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass
