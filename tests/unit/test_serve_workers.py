"""`chowder serve --workers N`: several API processes need PostgreSQL, and say so instead of starting."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from chowder.cli.main import app


def test_several_workers_on_sqlite_are_refused(data_dir: Path) -> None:
    env = {"CHOWDER_DATA_DIR": str(data_dir), "CHOWDER_DATABASE_URL": "", "CHOWDER_WORKERS": "1"}
    refused = CliRunner().invoke(app, ["serve", "--workers", "2", "--port", "1"], env=env)
    assert refused.exit_code == 2
    assert "Several workers need PostgreSQL" in refused.output
