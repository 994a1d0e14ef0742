"""`chowder chat INSTANCE`: talk to an agent. A REPL that prints each answer as it streams in, or one message
with `-m`; `--session` picks the conversation (the agent's main one by default)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from chowder.cli.client_io import InstanceArgument, connected, err, instance_id, print_json
from chowder.client import Chowder, ChowderError, Forbidden

# The model a chat asks for when none is named, by the instance's model provider (examples of the public docs).
DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-20250514", "openai": "gpt-4o", "gemini": "gemini-2.0-flash"}
EXIT_WORDS = {"/exit", "/quit"}
PROMPT = "you> "


def chat(
    instance: InstanceArgument,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Send this one message and exit.")] = None,
    session: Annotated[str | None, typer.Option("--session", "-s", help="The conversation (default: main).")] = None,
    model: Annotated[str | None, typer.Option(help="The model (default: one of the instance's provider).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With -m: print the whole answer as JSON once complete.")
    ] = False,
) -> None:
    """Chat with an instance's agent; the answer streams as it is written."""
    with connected() as chowder:
        target = instance_id(chowder, instance)
        chosen = model or _default_model(chowder, target)
        if message is not None and as_json:
            print_json(chowder.responses.create(target, message, model=chosen, session=session))
        elif message is not None:
            _turn(chowder, target, message, chosen, session)
        else:
            _repl(chowder, target, chosen, session)


def _default_model(chowder: Chowder, instance: str) -> str:
    try:
        provider = chowder.instances.get(instance).model_provider
    except Forbidden:  # a key that may chat but not read the instance
        provider = "anthropic"
    return DEFAULT_MODELS.get(provider, DEFAULT_MODELS["anthropic"])


def _turn(chowder: Chowder, instance: str, message: str, model: str, session: str | None) -> None:
    """Prints the answer's text as it arrives; a turn the agent could not finish is reported, not raised."""
    with chowder.responses.stream(instance, message, model=model, session=session) as events:
        for event in events:
            if event.type == "response.output_text.delta" and event.delta:
                sys.stdout.write(event.delta)
                sys.stdout.flush()
        sys.stdout.write("\n")
        final = events.final
    if final is not None and final.status == "failed":
        err.print(f"[red]The agent could not answer:[/red] {(final.error or {}).get('message', 'unknown error')}")


def _repl(chowder: Chowder, instance: str, model: str, session: str | None) -> None:
    err.print(f"Chatting in session [bold]{session or 'main'}[/bold] with {model}. /exit or Ctrl-D to leave.")
    while True:
        try:
            line = input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            sys.stdout.write("\n")
            return
        if line.strip() in EXIT_WORDS:
            return
        if not line.strip():
            continue
        try:
            _turn(chowder, instance, line, model, session)
        except KeyboardInterrupt:  # stops this answer, not the conversation
            sys.stdout.write("\n")
        except ChowderError as exc:
            err.print(f"[red]Error:[/red] {exc}")
