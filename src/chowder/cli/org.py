"""`chowder org`: the organization itself: its plan and model provider keys."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from chowder.cli.client_io import JsonOption, connected, err, out, print_json

app = typer.Typer(help="Your organization: plan and model provider keys.", no_args_is_help=True)


class Provider(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GEMINI = "gemini"


@app.command()
def show(as_json: JsonOption = False) -> None:
    """The organization, its plan and which model providers it holds a key for."""
    with connected() as chowder:
        org = chowder.organization.get()
    if as_json:
        print_json(org)
        return
    limit = "unlimited" if org.instance_limit is None else str(org.instance_limit)
    table = Table.grid(padding=(0, 2))
    for label, value in {
        "name": org.name,
        "id": org.id,
        "plan": org.subscription_tier,
        "instances": f"{org.instance_count}/{limit}",
        "model keys": ", ".join(org.model_providers) or "none (the server's dev model needs none)",
    }.items():
        table.add_row(f"[bold]{label}[/bold]", value)
    out.print(table)


@app.command("model-key")
def model_key(
    provider: Annotated[Provider, typer.Argument(help="Whose key it is.")],
    key: Annotated[str | None, typer.Option("--key", help="The key (asked for, hidden, when not given).")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Delete the stored key instead.")] = False,
) -> None:
    """Set (or remove) the key the organization's agents reach a model provider with; it is never shown again."""
    secret = "" if remove else key or typer.prompt(f"{provider.value} API key", hide_input=True)
    with connected() as chowder:
        org = chowder.organization.update(model_api_keys={provider.value: secret})
    err.print(f"Model keys of {org.name}: {', '.join(org.model_providers) or 'none'}")
