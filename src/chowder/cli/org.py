"""`chowder org`: the organization itself: its plan, model provider keys and monthly token cap."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from chowder.cli.client_io import JsonOption, connected, err, out, print_json
from chowder.cli.keys import monthly_use, token_limit

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
        "tokens this month": monthly_use(org.monthly_tokens_used, org.monthly_token_limit),
    }.items():
        table.add_row(f"[bold]{label}[/bold]", value)
    out.print(table)


@app.command()
def limit(
    tokens: Annotated[str, typer.Argument(help="Tokens per calendar month (UTC), or 'none' for no cap.")],
) -> None:
    """Cap the tokens all the organization's agents may use per month; every chat is refused (402) once they are."""
    with connected() as chowder:
        org = chowder.organization.update(monthly_token_limit=token_limit(tokens))
    err.print(f"{org.name}: {monthly_use(org.monthly_tokens_used, org.monthly_token_limit)} tokens this month.")


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
