"""`chowder files`: an instance's files (its OpenClaw state dir, with `workspace/`): ls, cat, get, put, mv, rm."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from chowder.cli.client_io import InstanceArgument, JsonOption, connected, err, instance_id, out, print_json
from chowder.client import UnsupportedMediaType
from chowder.schemas.files import FileContent

app = typer.Typer(help="An instance's files.", no_args_is_help=True)

RemotePath = Annotated[str, typer.Argument(help="A path inside the instance (relative to its root).")]


@app.command("ls")
def list_files(instance: InstanceArgument, path: RemotePath = ".", as_json: JsonOption = False) -> None:
    """A directory's entries."""
    with connected() as chowder:
        listing = chowder.files.list(instance_id(chowder, instance), path)
    if as_json:
        print_json(listing)
        return
    table = Table("permissions", "size", "modified", "name", box=None, header_style="bold")
    for entry in sorted(listing.entries, key=lambda e: (not e.is_dir, e.name)):
        name = f"[blue]{escape(entry.name)}/[/blue]" if entry.is_dir else escape(entry.name)
        modified = entry.mod_time.strftime("%Y-%m-%d %H:%M")
        table.add_row(entry.permissions, "" if entry.is_dir else str(entry.size), modified, name)
    out.print(table)


@app.command()
def cat(instance: InstanceArgument, path: RemotePath, as_json: JsonOption = False) -> None:
    """Print a file (text as text; any other file's bytes as they are)."""
    with connected() as chowder:
        target = instance_id(chowder, instance)
        if as_json:
            print_json(FileContent(path=path, content=chowder.files.read(target, path)))
            return
        try:
            sys.stdout.write(chowder.files.read(target, path))
        except UnsupportedMediaType:  # not UTF-8: its bytes, streamed
            with chowder.files.open(target, path) as download:
                for chunk in download.iter_bytes():
                    sys.stdout.buffer.write(chunk)
        sys.stdout.flush()


@app.command()
def get(
    instance: InstanceArgument,
    path: RemotePath,
    destination: Annotated[
        Path | None, typer.Argument(help="Where to save it (default: its name, here; - for stdout).")
    ] = None,
) -> None:
    """Download a file, streamed to disk."""
    with connected() as chowder, chowder.files.open(instance_id(chowder, instance), path) as download:
        if destination == Path("-"):
            for chunk in download.iter_bytes():
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        target = destination or Path(download.name or Path(path).name)
        if target.is_dir():
            target = target / (download.name or Path(path).name)
        written = download.save(target)
    err.print(f"Saved {written} bytes to {target}")


@app.command()
def put(
    instance: InstanceArgument,
    source: Annotated[Path, typer.Argument(help="The local file.", exists=True, dir_okay=False, readable=True)],
    path: Annotated[str | None, typer.Argument(help="Where in the instance (default: workspace/<its name>).")] = None,
) -> None:
    """Upload a file (streamed; parent directories are created)."""
    remote = path or f"workspace/{source.name}"
    if remote.endswith("/"):
        remote += source.name
    with connected() as chowder, source.open("rb") as data:
        chowder.files.upload(instance_id(chowder, instance), remote, data)
    err.print(f"Uploaded {source} to {remote}")


@app.command()
def mv(instance: InstanceArgument, source: RemotePath, destination: RemotePath) -> None:
    """Move or rename a file or directory."""
    with connected() as chowder:
        chowder.files.move(instance_id(chowder, instance), source, destination)


@app.command()
def rm(instance: InstanceArgument, path: RemotePath) -> None:
    """Delete a file, or a directory with everything in it."""
    with connected() as chowder:
        chowder.files.delete(instance_id(chowder, instance), path)


@app.command()
def mkdir(instance: InstanceArgument, path: RemotePath) -> None:
    """Make a directory (and its parents)."""
    with connected() as chowder:
        chowder.files.mkdir(instance_id(chowder, instance), path)
