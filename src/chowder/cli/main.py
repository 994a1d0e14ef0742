"""The `chowder` command: server-side commands (serve, worker, runtime, doctor, admin, deploy), and the client
commands of `client_commands.py` (login, instances, chat, files, keys, usage)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from rich.console import Console

from chowder import __version__
from chowder.cli.client_commands import register as register_client_commands
from chowder.core.logs import configure_logging
from chowder.core.settings import Settings

if TYPE_CHECKING:
    from chowder.persistence.store import SqlTransactions

app = typer.Typer(help="Chowder: a self-hostable control plane for OpenClaw agents.", no_args_is_help=True)
runtime_app = typer.Typer(help="The shared OpenClaw runtime cache.", no_args_is_help=True)
app.add_typer(runtime_app, name="runtime")
admin_app = typer.Typer(help="Operator commands, acting on the database directly.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
deploy_app = typer.Typer(help="Manifests to run Chowder on other platforms.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")
console = Console(stderr=True, soft_wrap=True)


def _logging(settings: Settings) -> None:
    configure_logging(settings.log_format)


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
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="API worker processes (default CHOWDER_WORKERS, 1)."),
    ] = None,
) -> None:
    """Serve the API in the foreground (with the lifecycle engine unless --no-engine)."""
    from chowder.api.app import create_app
    from chowder.cli.serving import CannotServe, serve_workers

    # Through the environment, which the workers' processes read their settings from.
    if workers is not None:
        os.environ["CHOWDER_WORKERS"] = str(workers)
    if dev_model:
        os.environ["CHOWDER_DEV_MODEL"] = "true"
    settings = Settings()
    _logging(settings)
    if settings.workers > 1:
        try:
            serve_workers(settings, host, port, engine)
        except CannotServe as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        return
    # Our own access line per request (`api/request_metrics.py`) replaces uvicorn's: it carries the request id.
    # Python's event loop, not uvloop: libuv accepts one connection per turn of its loop (libuv#3696), and a
    # saturated process's turn runs every ready request, tens of milliseconds, so the last of 32 connections opened
    # together waited 0.6 s for its first answer. Python's loop accepts every waiting connection at once, and
    # answers these routes as fast. Workers run on it too, each on a socket of its own (`serving.WorkerLoop`).
    app = create_app(settings, run_engine=engine, settle_gc=True)
    uvicorn.run(app, host=host, port=port, loop="asyncio", log_config=None, access_log=False)


@app.command()
def worker() -> None:
    """Run only the lifecycle engine (beside `serve --no-engine` replicas on a shared database)."""
    from chowder.worker import run_worker

    settings = Settings()
    _logging(settings)
    asyncio.run(run_worker(settings))


@runtime_app.command("install")
def runtime_install(
    releases: Annotated[
        list[str] | None,
        typer.Option(
            "--release",
            "--version",
            help="OpenClaw release, alias or `all` (the catalog); repeatable. Default: v1.",
        ),
    ] = None,
) -> None:
    """Install Node 24 and the pinned OpenClaw packages of each release into the shared runtime cache (once): the
    releases an instance can be created on or upgraded to."""
    from chowder.runtime.openclaw.installer import RuntimeCache
    from chowder.runtime.openclaw.versions import DEFAULT_RELEASE, RELEASES, resolve_release

    settings = Settings()
    cache = RuntimeCache(settings.resolved_runtime_dir)
    requested = releases or [DEFAULT_RELEASE]
    for release in RELEASES.values() if "all" in requested else map(resolve_release, requested):
        if cache.is_installed(release):
            console.print(f"OpenClaw {release.version} is installed in {cache.root}")
            continue
        with console.status(f"Installing OpenClaw {release.version} into {cache.root}") as status:

            def show(line: str) -> None:
                console.print(line)
                status.update(line.strip())

            cache.install(release, show)
        console.print(f"[green]OpenClaw {release.version} ready[/green]")


@runtime_app.command("image")
def runtime_image(
    tag: Annotated[str | None, typer.Option(help="Image name and tag (default: CHOWDER_DOCKER_IMAGE's).")] = None,
    push: Annotated[bool, typer.Option(help="Push it to its registry afterwards, for other hosts.")] = False,
) -> None:
    """Build the docker provider's gateway image from the runtime cache (no registry pulls), in the engine at
    DOCKER_HOST."""
    import docker

    from chowder.core.errors import ChowderError
    from chowder.runtime.openclaw.image import build_image
    from chowder.runtime.openclaw.installer import RuntimeCache
    from chowder.runtime.openclaw.versions import RELEASES

    settings = Settings()
    cache = RuntimeCache(settings.resolved_runtime_dir)
    releases = [release for release in RELEASES.values() if cache.is_installed(release)]
    name = tag or settings.docker_image
    try:
        client = docker.from_env(timeout=600)
        with console.status(f"Building {name}") as status:

            def show(line: str) -> None:
                console.print(line)
                status.update(line)

            build_image(client, cache, releases, name, show)
            if push:
                show(f"Pushing {name}")
                for line in client.images.push(name, stream=True, decode=True):
                    if "error" in line:
                        raise ChowderError(str(line["error"]))
    except (ChowderError, docker.errors.DockerException) as exc:
        console.print(f"[red]{getattr(exc, 'detail', exc)}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]{name} ready[/green] (CHOWDER_SANDBOX_PROVIDER=docker runs instances on it)")


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
        console.print(f"  {mechanism:<13} {description}")


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _namespace_name(value: str | None) -> str | None:
    if value is not None and not _DNS_LABEL.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a namespace name (lower-case letters, digits and -, at most 63)")
    return value


@deploy_app.command("kubernetes")
def deploy_kubernetes(
    replicas: Annotated[int, typer.Option(min=1, help="API replicas (serve --no-engine).")] = 2,
    workers: Annotated[int, typer.Option(min=1, help="Lifecycle workers.")] = 1,
    namespace: Annotated[
        str, typer.Option(callback=_namespace_name, help="The control plane's namespace.")
    ] = "chowder",
    image: Annotated[str, typer.Option(help="The control plane's image.")] = f"chowder:{__version__}",
    sandbox_namespace: Annotated[
        str | None, typer.Option(callback=_namespace_name, help="Where instances run (default: --namespace).")
    ] = None,
) -> None:
    """Print the manifests that run Chowder on Kubernetes; apply with `| kubectl apply -f -`. The Secret
    `chowder` (keys secret-key, database-url) is yours to create: no secret is printed."""
    import yaml

    from chowder.deploy.kubernetes import Deployment, manifests

    deployment = Deployment(namespace, image, replicas, workers, sandbox_namespace)
    typer.echo(yaml.safe_dump_all(manifests(deployment), sort_keys=False), nl=False)


@admin_app.command("orgs")
def admin_orgs() -> None:
    """Every organization with its tier and instance count, oldest first."""
    from rich.table import Table

    from chowder.domain import orgs

    table = Table("name", "tier", "instances", "stripe customer")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, to copy into `set-tier`
    with _transactions() as tx:
        every = tx.run_sync(orgs.every_org)
    for org in every:
        limit = "unlimited" if org.instance_limit is None else str(org.instance_limit)
        table.add_row(
            org.name, org.subscription_tier, f"{org.instance_count}/{limit}", org.stripe_customer_id or "", org.id
        )
    Console(soft_wrap=True).print(table)


@admin_app.command("set-tier")
def admin_set_tier(
    org_id: Annotated[str, typer.Argument(help="The organization's id (see `chowder admin orgs`).")],
    tier: Annotated[str, typer.Argument(help="whale, lobster, crab or shrimp.")],
) -> None:
    """Set an organization's tier (whale is granted this way); instances above the new limit are kept."""
    from chowder.core.errors import NotFound
    from chowder.domain import orgs
    from chowder.domain.models import Tier

    if tier not in {t.value for t in Tier}:
        raise typer.BadParameter(f"unknown tier {tier!r}; one of: {', '.join(t.value for t in Tier)}")
    try:
        with _transactions() as tx:
            org = tx.run_sync(lambda uow: orgs.set_tier(uow, org_id, Tier(tier)))
    except NotFound:
        console.print(f"[red]No organization {org_id}.[/red]")
        raise typer.Exit(1) from None
    limit = "unlimited" if org.instance_limit is None else org.instance_limit
    console.print(f"{org.name} ({org.id}) is now on {org.subscription_tier}: {org.instance_count}/{limit} instances")


@contextmanager
def _transactions() -> Iterator[SqlTransactions]:
    """Transactions on the server's database, migrated to the current schema."""
    from chowder.persistence.db import Database, migrate
    from chowder.persistence.store import SqlTransactions

    db = Database(Settings().resolved_database_url)
    try:
        migrate(db.engine)
        yield SqlTransactions(db)
    finally:
        db.dispose()


register_client_commands(app)

if __name__ == "__main__":
    app()
