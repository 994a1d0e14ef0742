"""The `chowder` command: server-side commands (serve, worker, runtime, doctor, admin)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from chowder.core.settings import Settings

app = typer.Typer(help="Chowder: a self-hostable control plane for OpenClaw agents.", no_args_is_help=True)
runtime_app = typer.Typer(help="The shared OpenClaw runtime cache.", no_args_is_help=True)
app.add_typer(runtime_app, name="runtime")
console = Console(stderr=True, soft_wrap=True)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    engine: Annotated[bool, typer.Option(help="Run the lifecycle engine in this process.")] = True,
    dev_model: Annotated[
        bool,
        typer.Option(
            "--dev-model",
            help="Answer every model call with the built-in echo model; no provider key needed. Never in production.",
        ),
    ] = False,
) -> None:
    """Serve the API in the foreground (with the lifecycle engine unless --no-engine)."""
    from chowder.api.app import create_app

    _logging()
    settings = Settings(dev_model=True) if dev_model else Settings()
    url = settings.control_plane_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    uvicorn.run(create_app(settings, control_plane_url=url, run_engine=engine), host=host, port=port, log_config=None)


@app.command()
def worker() -> None:
    """Run only the lifecycle engine (beside `serve --no-engine` replicas on a shared database)."""
    from chowder.worker import run_worker

    _logging()
    settings = Settings()
    if settings.control_plane_url is None:
        raise typer.BadParameter("set CHOWDER_CONTROL_PLANE_URL to where sandboxes reach the API")
    asyncio.run(run_worker(settings, settings.control_plane_url))


@runtime_app.command("install")
def runtime_install(
    version: Annotated[str, typer.Option(help="OpenClaw release or alias.")] = "v1",
) -> None:
    """Install Node 24 and the pinned OpenClaw packages into the shared runtime cache (once)."""
    from chowder.runtime.openclaw.installer import RuntimeCache
    from chowder.runtime.openclaw.versions import resolve_release

    settings = Settings()
    release = resolve_release(version)
    cache = RuntimeCache(settings.resolved_runtime_dir)
    if cache.is_installed(release):
        console.print(f"OpenClaw {release.version} is installed in {cache.root}")
        return
    with console.status(f"Installing OpenClaw {release.version} into {cache.root}") as status:
        cache.install(release, lambda line: (console.print(line), status.update(line.strip())))
    console.print(f"[green]OpenClaw {release.version} ready[/green]")


@app.command()
def doctor() -> None:
    """Print what this host offers: runtime, database, and the isolation new sandboxes get."""
    from chowder.runtime.openclaw.installer import RuntimeCache
    from chowder.runtime.openclaw.versions import RELEASES
    from chowder.sandbox.registry import make_provider

    settings = Settings()
    cache = RuntimeCache(settings.resolved_runtime_dir)
    console.print(f"data dir:   {settings.data_dir.resolve()}")
    console.print(f"database:   {settings.resolved_database_url.split('@')[-1]}")
    for version, release in RELEASES.items():
        state = "installed" if cache.is_installed(release) else "not installed (chowder runtime install)"
        console.print(f"openclaw {version}: {state} in {cache.root}")
    provider = make_provider(settings)
    console.print(f"sandbox provider: {provider.name}")
    for mechanism, description in provider.isolation_report().items():
        console.print(f"  {mechanism:<11} {description}")


if __name__ == "__main__":
    app()
