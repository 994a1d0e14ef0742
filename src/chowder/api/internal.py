"""The sandbox-facing listener: an app and a socket of their own, bound where only sandboxes reach it (the
sandbox network's host address; never the public API's address). It serves the model routes and nothing else,
so a gateway's credential opens no customer route and a customer's key opens no model route."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI

from chowder.api.activity import ActivityScope
from chowder.api.body_limit import BodyLimit, BodyLimits
from chowder.api.routes import model_gateway
from chowder.api.state import AppState
from chowder.sandbox.base import SandboxProvider

log = logging.getLogger("chowder")


def create_internal_app(state: AppState) -> FastAPI:
    """Shares the API's state: usage is attributed through the API process's session locks."""
    app = FastAPI(title="Chowder sandbox-facing endpoint", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.chowder = state
    app.add_middleware(BodyLimit, limits=BodyLimits.from_settings(state.settings))
    app.add_middleware(ActivityScope)
    app.include_router(model_gateway.router)
    return app


class _EmbeddedServer(uvicorn.Server):
    """Runs in the API server's event loop; that server owns the process's signals and ends this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_sandbox_facing(state: AppState, provider: SandboxProvider) -> AsyncIterator[None]:
    """Listen at the provider's sandbox-facing address for the lifetime of the block. A port that cannot be bound
    stops the server, unless the host cannot run sandboxes at all (then nothing would call it; said in the log)."""
    host, port = provider.sandbox_facing_address()
    try:
        # Shared by every API replica on the host (the kernel spreads the gateways' connections across them):
        # any replica can take a model call, the turn's key is in the database on PostgreSQL. Only processes of
        # our own uid can join the port.
        sock = socket.create_server((host, port), reuse_port=True)
    except OSError as exc:
        if provider.refusal() is None:
            raise RuntimeError(f"Cannot listen for sandboxes on {host}:{port}: {exc.strerror}") from exc
        log.error("not serving the model endpoint on %s:%s (%s): no sandbox can run here", host, port, exc.strerror)
        yield
        return
    config = uvicorn.Config(create_internal_app(state), log_config=None, lifespan="off", access_log=False)
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="chowder-sandbox-facing")
    log.info("model endpoint for sandboxes on http://%s:%s", host, port)
    try:
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()
