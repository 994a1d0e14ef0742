"""`chowder instances`: list, create (--wait, --from-backup, --clone-from), get, start, stop, recover, restore,
delete."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from chowder.cli.client_io import InstanceArgument, JsonOption, connected, err, instance_id, out, print_json
from chowder.cli.progress import Watch, while_watching
from chowder.client import Chowder
from chowder.client.waiting import DEFAULT_WAIT_S
from chowder.schemas.instances import Egress, Instance

app = typer.Typer(help="Your agents: one OpenClaw gateway each.", no_args_is_help=True)

STATUS_COLOURS = {"running": "green", "provisioning": "yellow", "stopped": "dim", "error": "red"}


class EgressChoice(StrEnum):
    OPEN = "open"
    NONE = "none"


def _egress(choice: EgressChoice | None) -> Egress | None:
    return None if choice is None else choice.value


TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait for `running`.")]


def _status(instance: Instance) -> str:
    colour = STATUS_COLOURS.get(instance.status, "white")
    power = f" ({instance.power})" if instance.power not in {None, "awake"} else ""
    return f"[{colour}]{instance.status}[/{colour}]{power}"


def _table(instances: list[Instance]) -> Table:
    table = Table("name", "status", "model", "created", box=None, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=36)
    for instance in instances:
        created = instance.created_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(instance.name, _status(instance), instance.model_provider, created, instance.id)
    return table


def _show(instance: Instance) -> None:
    table = Table.grid(padding=(0, 2))
    rows = {
        "id": instance.id,
        "name": instance.name,
        "status": _status(instance),
        "model provider": instance.model_provider,
        "openclaw": instance.openclaw_version,
        "sandbox": f"{instance.sandbox_provider} {instance.sandbox_id or ''}".strip(),
        "egress": instance.egress,
        "auto stop": "never"
        if instance.auto_stop is None
        else f"freeze {instance.auto_stop.freeze_after_s}s, stop {instance.auto_stop.stop_after_s}s",
        "created": instance.created_at.isoformat(timespec="seconds"),
    }
    if instance.error_message:
        rows["error"] = f"[red]{instance.error_message}[/red]"
    for label, value in rows.items():
        table.add_row(f"[bold]{label}[/bold]", value)
    out.print(table)


@app.command("list")
def list_instances(as_json: JsonOption = False) -> None:
    """Every instance of the organization, newest first."""
    with connected() as chowder:
        instances = chowder.instances.list()
    if as_json:
        print_json(instances)
    elif instances:
        out.print(_table(instances))
    else:
        err.print("No instances yet: `chowder instances create NAME --wait`.")


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A name for it (1 to 128 characters).", show_default=False)],
    model_provider: Annotated[
        str | None, typer.Option("--model-provider", help="anthropic, openai or gemini (server default: anthropic).")
    ] = None,
    egress: Annotated[EgressChoice | None, typer.Option(help="What the agent may reach (default open).")] = None,
    from_backup: Annotated[str | None, typer.Option("--from-backup", help="Boot on a copy of this backup.")] = None,
    clone_from: Annotated[
        str | None, typer.Option("--clone-from", help="Boot on a copy of this instance (backed up now).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show its progress until it runs.")] = False,
    timeout: TimeoutOption = DEFAULT_WAIT_S,
    as_json: JsonOption = False,
) -> None:
    """Create an instance; it boots in the background (`--wait` follows it until it runs). A clone
    (`--from-backup`, `--clone-from`) has the original's state but none of its channels."""
    with connected() as chowder:
        source = instance_id(chowder, clone_from) if clone_from else None
        instance = chowder.instances.create(
            name, model_provider=model_provider, egress=_egress(egress), from_backup=from_backup, clone_from=source
        )
        if wait:
            instance = _wait(chowder, instance, timeout)
    if as_json:
        print_json(instance)
    elif not wait:
        err.print(f"Created {instance.name} ({instance.status}); `chowder instances get {instance.id}` to follow it.")
        out.print(instance.id)


def _wait(chowder: Chowder, instance: Instance, timeout: float) -> Instance:
    with Watch(err, instance.name) as watch:
        running = chowder.instances.wait_until_running(instance.id, timeout, watch)
    watch.done(running)
    return running


@app.command()
def get(instance: InstanceArgument, as_json: JsonOption = False) -> None:
    """One instance, in full."""
    with connected() as chowder:
        found = chowder.instances.get(instance_id(chowder, instance))
    if as_json:
        print_json(found)
    else:
        _show(found)


@app.command()
def start(instance: InstanceArgument, as_json: JsonOption = False) -> None:
    """Start a stopped instance, showing its progress until it runs."""
    with connected() as chowder:
        found = chowder.instances.get(instance_id(chowder, instance))
        started = while_watching(chowder, err, found, lambda: chowder.instances.start(found.id))
    if as_json:
        print_json(started)


@app.command()
def recover(instance: InstanceArgument, as_json: JsonOption = False) -> None:
    """Boot an instance in `error` again, keeping its id and files."""
    with connected() as chowder:
        found = chowder.instances.get(instance_id(chowder, instance))
        recovered = while_watching(chowder, err, found, lambda: chowder.instances.recover(found.id))
    if as_json:
        print_json(recovered)


@app.command()
def restore(
    instance: InstanceArgument,
    backup: Annotated[str, typer.Argument(help="The backup's id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Replace an instance's state with a backup's and boot it on it (new credentials), showing its progress."""
    with connected() as chowder:
        found = chowder.instances.get(instance_id(chowder, instance))
        restored = while_watching(chowder, err, found, lambda: chowder.instances.restore(found.id, backup))
    if as_json:
        print_json(restored)


@app.command()
def stop(instance: InstanceArgument, as_json: JsonOption = False) -> None:
    """Stop a running instance (its files stay)."""
    with connected() as chowder, err.status("Stopping"):
        stopped = chowder.instances.stop(instance_id(chowder, instance))
    _done(stopped, as_json)


@app.command()
def delete(
    instance: InstanceArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an instance and all its files, for good."""
    with connected() as chowder:
        target = chowder.instances.get(instance_id(chowder, instance))
        if not yes and not typer.confirm(f"Delete {target.name} ({target.id}) and all its files?"):
            raise typer.Abort()
        chowder.instances.delete(target.id)
    err.print(f"Deleted {target.name}.")


def _done(instance: Instance, as_json: bool) -> None:
    if as_json:
        print_json(instance)
    else:
        err.print(f"{instance.name} is {_status(instance)}")
