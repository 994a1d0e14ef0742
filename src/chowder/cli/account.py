"""`chowder login`, `logout` and `signup`: which server the client commands talk to, and as whom."""

from __future__ import annotations

from typing import Annotated

import typer

from chowder.cli.client_io import err, fail, out, reported
from chowder.cli.credentials import DEFAULT_URL, Credentials, credentials_path, current, forget, save
from chowder.client import Chowder, Forbidden, Unauthorized

UrlOption = Annotated[str | None, typer.Option(help="The server (default: the stored one, or CHOWDER_URL).")]


def login(
    url: UrlOption = None,
    key: Annotated[str | None, typer.Option("--key", help="The API key (asked for, hidden, when not given).")] = None,
) -> None:
    """Check an API key against the server and store both for the other commands (mode 0600)."""
    server = url or current().url
    api_key = key or typer.prompt("API key", hide_input=True)
    with reported(), Chowder(server, api_key) as chowder:
        try:
            who = f"organization {chowder.organization.get().name}"
        except Forbidden:  # a scoped key: valid, but it may not read the organization
            who = "a scoped key"
        except Unauthorized:
            fail(f"{server} does not accept this key.")
    path = save(Credentials(server, api_key))
    err.print(f"Logged in to {server} as {who}; saved in {path}")


def logout() -> None:
    """Forget the stored server and key."""
    if forget():
        err.print(f"Removed {credentials_path()}")
    else:
        err.print("Not logged in.")


def signup(
    name: Annotated[str, typer.Argument(help="Your organization's name.", show_default=False)],
    url: UrlOption = None,
) -> None:
    """Create an organization on the server and log in with its new organization key."""
    server = url or current().url or DEFAULT_URL
    with reported(), Chowder(server) as anonymous:
        created = anonymous.organization.signup(name)
    path = save(Credentials(server, created.api_key))
    err.print(f"Created organization {created.organization.name}; logged in, key saved in {path}.")
    err.print("Its organization key (shown only now; keep it to sign in to the dashboard):")
    out.print(created.api_key)
