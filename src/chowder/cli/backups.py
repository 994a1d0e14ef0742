"""`chowder backups`: an instance's backups (OpenClaw's own archive of its state): create, ls, get, rm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chowder.cli.client_io import InstanceArgument, JsonOption, connected, err, instance_id, out, print_json
from chowder.schemas.backups import Backup

app = typer.Typer(help="Backups of an instance's state (kept after the instance is deleted).", no_args_is_help=True)

BackupArgument = Annotated[str, typer.Argument(help="The backup's id (bkp_…).", show_default=False)]


def _table(backups: list[Backup]) -> Table:
    table = Table("created", "status", "trigger", "size", "instance", box=None, header_style="bold")
    table.add_column("id", no_wrap=True)
    for backup in backups:
        size = "" if backup.size_bytes is None else f"{backup.size_bytes:,}"
        status = backup.status if backup.error is None else f"{backup.status}: {backup.error}"
        created = backup.created_at.isoformat(timespec="seconds")
        table.add_row(created, status, backup.trigger, size, backup.instance_id, backup.id)
    return table


@app.command()
def create(instance: InstanceArgument, as_json: JsonOption = False) -> None:
    """Back the instance up now (running or stopped); prints the backup's id once it is completed."""
    with connected() as chowder:
        backup = chowder.backups.create(instance_id(chowder, instance))
    if as_json:
        print_json(backup)
    else:
        out.print(backup.id)
        err.print(f"Completed: {backup.size_bytes:,} bytes, sha256 {backup.sha256}")


@app.command("ls")
def list_backups(
    instance: Annotated[
        str | None, typer.Argument(help="An instance's id or name (default: every backup of the organization).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Backups, newest first (the organization's include those of deleted instances)."""
    with connected() as chowder:
        backups = chowder.backups.list(None if instance is None else instance_id(chowder, instance))
    if as_json:
        print_json(backups)
    else:
        out.print(_table(backups))


@app.command()
def get(
    backup: BackupArgument,
    destination: Annotated[Path | None, typer.Argument(help="Where to save it (default: <id>.tar.gz here).")] = None,
) -> None:
    """Download the archive, streamed to disk (an org key)."""
    target = destination or Path(f"{backup}.tar.gz")
    if target.is_dir():
        target = target / f"{backup}.tar.gz"
    with connected() as chowder, chowder.backups.open(backup) as download:
        written = download.save(target)
    err.print(f"Saved {written} bytes to {target}")


@app.command()
def rm(backup: BackupArgument) -> None:
    """Delete a backup and its archive (an org key)."""
    with connected() as chowder:
        chowder.backups.delete(backup)
