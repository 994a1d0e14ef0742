"""`chowder serve --workers N`: N API processes on one port, and the lifecycle engine in exactly one place.

One process answers at most one core's worth of requests (the GIL); on a host with more cores, uvicorn's
supervisor spawns N processes, each listening on the port with SO_REUSEPORT (the kernel spreads connections
across them: `WorkerLoop`), and replaces any that dies. Each builds the app of `serve --no-engine` from the
environment; the engine and the Stripe quantity sync (`chowder worker`'s work) run beside them in a thread of the
supervising process, so one engine works however many workers answer. The workers are replicas on one host: they
share the database (PostgreSQL, or the SQLite file, where a turn's session is held by a lock file beside it:
`persistence/host_turns.py`) and the sandbox-facing port (a turn and the model calls it makes may reach different
workers, and meet in the database), and each enforces its share of the rate limits (`Quotas.of`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from chowder.api.app import create_app
from chowder.core.logs import configure_logging
from chowder.core.settings import Settings
from chowder.persistence.db import Database, migrate, sqlite_file
from chowder.worker import run_worker

log = logging.getLogger("chowder")
WORKER_APP = f"{__name__}:worker_app"
_ENGINE_STOP_S = 30.0


class CannotServe(Exception):
    """The workers cannot start; said to the operator as it is."""


class NeedsSharedDatabase(CannotServe):
    """Several workers on a database in memory: each would have its own."""


def worker_app() -> FastAPI:
    """One worker's app (uvicorn calls it in each worker): its settings are the environment the supervisor was
    started with, the command's options included (`serve` puts them there before spawning)."""
    settings = Settings()
    configure_logging(settings.log_format)
    return create_app(settings, run_engine=False, settle_gc=True)


def serve_workers(settings: Settings, host: str, port: int, engine: bool) -> None:
    """Until SIGINT or SIGTERM: `settings.workers` API processes, and the engine in this one unless not `engine`.
    Raises NeedsSharedDatabase on a SQLite database in memory, CannotServe on a port another program holds."""
    url = settings.resolved_database_url
    if not url.startswith("postgresql") and sqlite_file(url) is None:
        raise NeedsSharedDatabase("Several workers need a database file or PostgreSQL (CHOWDER_DATABASE_URL).")
    db = Database(url)
    try:
        migrate(db.engine)  # once, here: the workers then find the schema current and do not race to migrate it
    finally:
        db.dispose()
    config = uvicorn.Config(
        WORKER_APP,
        factory=True,
        workers=settings.workers,
        loop=f"{__name__}:WorkerLoop",
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )
    with _reserved(host, port), _engine_thread(settings) if engine else contextlib.nullcontext():
        # No socket to share: given none (uvicorn types the list as required, but its workers' `Server.run` takes
        # None), each worker's server binds the host and port itself, with `WorkerLoop`'s SO_REUSEPORT.
        Multiprocess(config, sockets=cast(list[socket.socket], None)).run()


class WorkerLoop(asyncio.SelectorEventLoop):
    """A worker's event loop (uvicorn makes one in each): its server listens on a socket of its own, joined to the
    other workers' on the port with SO_REUSEPORT (as the sandbox-facing port is), and the kernel spreads new
    connections across them evenly.

    Not one socket shared by all, as uvicorn's workers have it. On that socket, Python's loop accepts every waiting
    connection at once in whichever worker woke first (all 32 of a client's in one of two workers, one run in
    four), and uvloop (libuv) accepts one per turn of its loop, whose turn under load runs every ready request
    (200 connections opened together: 58 waited over 2 s). And the socket uvicorn binds for its workers is made
    with protocol 0, on which Python's loop leaves Nagle's algorithm on (each answer's body then waited up to
    40 ms for the ACK of its headers); sockets of its own are made with IPPROTO_TCP, so it turns it off."""

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("sock") is None:
            kwargs["reuse_port"] = True
        return await super().create_server(*args, **kwargs)


@contextlib.contextmanager
def _reserved(host: str, port: int) -> Iterator[None]:
    """Holds the port for the workers for the block, bound but never listening (so no connection waits on it);
    a port taken by another program stops the command here, rather than each worker failing in turn."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CannotServe(f"Cannot listen on {host}:{port}: {exc.strerror}.") from exc
        yield


@contextlib.contextmanager
def _engine_thread(settings: Settings) -> Iterator[None]:
    """The engine's work on an event loop of its own in a thread, for the block; the main thread stays the
    supervisor's, which owns the signals."""
    loop = asyncio.new_event_loop()
    work = loop.create_task(run_worker(settings), name="chowder-engine")

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(work)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the lifecycle engine stopped; the API workers keep serving")
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="chowder-engine", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the engine had stopped already
            loop.call_soon_threadsafe(work.cancel)
        thread.join(_ENGINE_STOP_S)
