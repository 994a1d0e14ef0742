"""`chowder usage [INSTANCE]`: tokens spent, for the organization (per instance and key) or one instance (per
session and model)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from chowder.cli.client_io import JsonOption, connected, instance_id, out, print_json
from chowder.schemas.usage import InstanceUsage, OrganizationUsage, UsageTotals

Since = Annotated[datetime | None, typer.Option(help="From this moment (inclusive).")]
Until = Annotated[datetime | None, typer.Option(help="Up to this moment (exclusive).")]


def usage(
    instance: Annotated[str | None, typer.Argument(help="One instance (id or name); default: all.")] = None,
    since: Since = None,
    until: Until = None,
    as_json: JsonOption = False,
) -> None:
    """Token usage of the model calls, with breakdowns."""
    with connected() as chowder:
        report: InstanceUsage | OrganizationUsage
        breakdowns: dict[str, list[tuple[str, UsageTotals]]]
        if instance is None:
            report = chowder.organization.usage(since=since, until=until)
            breakdowns = {
                "instance": [(item.instance_id, item) for item in report.instances],
                "key": [(item.key_id or "(engine)", item) for item in report.keys],
            }
        else:
            report = chowder.instances.usage(instance_id(chowder, instance), since=since, until=until)
            breakdowns = {
                "session": [(item.session_id or "(none)", item) for item in report.sessions],
                "model": [(item.model, item) for item in report.models],
            }
    if as_json:
        print_json(report)
        return
    for label, rows in breakdowns.items():
        out.print(_table(label, [*rows, ("total", report.total)]))


def _table(label: str, rows: list[tuple[str, UsageTotals]]) -> Table:
    table = Table(label, "requests", "input", "output", "total", box=None, header_style="bold")
    for name, totals in rows:
        style = "bold" if name == "total" else None
        table.add_row(
            name,
            str(totals.requests),
            f"{totals.input_tokens:,}",
            f"{totals.output_tokens:,}",
            f"{totals.total_tokens:,}",
            style=style,
        )
    return table
