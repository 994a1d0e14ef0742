"""`chowder keys`: scoped API keys, each limited to some instances and permissions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, cast

import typer
from rich.table import Table

from chowder.cli.client_io import JsonOption, connected, err, out, print_json
from chowder.schemas.keys import Key, PermissionName

app = typer.Typer(help="Scoped API keys (for an app, a teammate, a single agent).", no_args_is_help=True)


class Permission(StrEnum):
    """The API's permission names (`schemas.keys.PermissionName`), as a choice the command line can offer."""

    READ = "read"
    INTERACT = "interact"
    CONFIGURE = "configure"
    FILES = "files"
    CHANNELS = "channels"


def _table(keys: list[Key]) -> Table:
    table = Table("name", "prefix", "active", "expires", "last used", box=None, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=36)
    for key in keys:
        expires = key.expires_at.isoformat(timespec="minutes") if key.expires_at else "never"
        used = key.last_used_at.isoformat(timespec="minutes") if key.last_used_at else "never"
        active = "[green]yes[/green]" if key.is_active else "[red]no[/red]"
        table.add_row(key.name, key.key_prefix, active, expires, used, key.id)
    return table


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What it is for.", show_default=False)],
    instances: Annotated[list[str], typer.Option("--instance", "-i", help="An instance id it may reach (repeat).")],
    permissions: Annotated[
        list[Permission], typer.Option("--permission", "-p", help="A permission on each of them (repeat).")
    ],
    expires_at: Annotated[datetime | None, typer.Option(help="When it stops working (default: never).")] = None,
    monthly_token_limit: Annotated[
        int | None, typer.Option(min=1, help="Tokens its chats may use per calendar month (default: no cap).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a scoped key. The key itself is shown now and never again."""
    granted = cast(list[PermissionName], [permission.value for permission in permissions])
    with connected() as chowder:
        created = chowder.keys.create(
            name,
            instance_ids=instances,
            permissions=granted,
            expires_at=expires_at,
            monthly_token_limit=monthly_token_limit,
        )
    if as_json:
        print_json(created)
        return
    err.print(f"Created key {created.name} ({created.id}). Copy it now: it is not shown again.")
    out.print(created.raw_key)


@app.command("list")
def list_keys(as_json: JsonOption = False) -> None:
    """The organization's scoped keys, newest first (revoked ones show as inactive)."""
    with connected() as chowder:
        keys = chowder.keys.list()
    if as_json:
        print_json(keys)
    else:
        out.print(_table(keys))


@app.command()
def get(key_id: Annotated[str, typer.Argument(help="The key's id.")], as_json: JsonOption = False) -> None:
    """One key with what it may do on each instance."""
    with connected() as chowder:
        key = chowder.keys.get(key_id)
    if as_json:
        print_json(key)
        return
    out.print(_table([key]))
    for grant in key.instances:
        out.print(f"  {grant.instance_id}: {', '.join(grant.permissions)}")
    out.print(f"  tokens this month: {monthly_use(key.monthly_tokens_used, key.monthly_token_limit)}")


@app.command()
def limit(
    key_id: Annotated[str, typer.Argument(help="The key's id.")],
    tokens: Annotated[str, typer.Argument(help="Tokens per calendar month (UTC), or 'none' for no cap.")],
) -> None:
    """Cap the tokens a key's chats may use per month; its turns are refused (402) once they are used."""
    with connected() as chowder:
        key = chowder.keys.update(key_id, monthly_token_limit=token_limit(tokens))
    err.print(f"Key {key.name}: {monthly_use(key.monthly_tokens_used, key.monthly_token_limit)} tokens this month.")


def token_limit(tokens: str) -> int | None:
    """A monthly token cap as typed: a whole number of at least 1, or `none`."""
    if tokens.lower() == "none":
        return None
    if not tokens.isdigit() or int(tokens) < 1:
        raise typer.BadParameter(f"{tokens!r} is not a number of tokens (at least 1) nor 'none'.")
    return int(tokens)


def monthly_use(used: int, cap: int | None) -> str:
    return f"{used:,} of {cap:,}" if cap is not None else f"{used:,} (no cap)"


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key, at once and for good."""
    with connected() as chowder:
        chowder.keys.revoke(key_id)
    err.print(f"Revoked {key_id}.")
