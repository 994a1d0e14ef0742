"""What every client command shares: the SDK client made from the stored credentials, errors shown as one red
line and exit status 1, `--json` output, and instances named by id or by name."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from chowder.cli.credentials import current
from chowder.client import Chowder, ChowderError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (for scripts).")]
InstanceArgument = Annotated[str, typer.Argument(help="The instance's id, or its name.", show_default=False)]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@contextmanager
def connected() -> Iterator[Chowder]:
    """A client for the logged-in server; a failed call ends the command with its message, not a traceback."""
    credentials = current()
    if credentials.api_key is None:
        err.print("[red]Not logged in.[/red] Run `chowder login` (or set CHOWDER_URL and CHOWDER_API_KEY).")
        raise typer.Exit(1)
    with reported(), Chowder(credentials.url, credentials.api_key) as chowder:
        yield chowder


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except ChowderError as exc:
        fail(str(exc))
    except ValidationError as exc:  # refused before sending, by the API's own schemas
        fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()))


def fail(message: str) -> NoReturn:
    err.print(f"[red]Error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(1)


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    data: Any = (
        value.model_dump(mode="json") if isinstance(value, BaseModel) else [v.model_dump(mode="json") for v in value]
    )
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def instance_id(chowder: Chowder, reference: str) -> str:
    """An id as given; a name looked up among the organization's instances (it must name exactly one)."""
    if _UUID.fullmatch(reference):
        return reference
    matches = [instance.id for instance in chowder.instances.list() if instance.name == reference]
    if len(matches) != 1:
        fail(f"{'No' if not matches else 'More than one'} instance is named {reference!r}; give its id.")
    return matches[0]
