"""The client commands of `chowder` (built on the SDK, talking to a server over its API), added beside the
server-side ones."""

from __future__ import annotations

import typer

from chowder.cli import account, backups, chat, files, instances, keys, org, usage


def register(app: typer.Typer) -> None:
    for command in (account.signup, account.login, account.logout, chat.chat, usage.usage):
        app.command()(command)
    app.add_typer(instances.app, name="instances")
    app.add_typer(files.app, name="files")
    app.add_typer(backups.app, name="backups")
    app.add_typer(keys.app, name="keys")
    app.add_typer(org.app, name="org")
