"""The boundaries docs/architecture.md promises, checked on the source itself: what may import what, where
OpenClaw's vocabulary may appear, and how large a module or a route handler may grow."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "chowder"
MAX_FILE_LINES = 400
MAX_HANDLER_LINES = 15
# OpenClaw's own words: RPC methods, headers, config keys, variables, its session marker and CLI.
OPENCLAW_VOCABULARY = re.compile(
    r"x-openclaw-|OPENCLAW_|\bconfig\.(patch|get|apply)\b|\bchannels\.status\b|\bweb\.login\.|plugins\.(entries|load|installs)"
    r"|skills\.entries|session=agent:|\"skills\", \"(list|info|install)\"|\"pairing\", \"approve\""
)


def _modules(package: str = "") -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.startswith("chowder")]


def _name(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


def test_the_domain_imports_only_core_its_ports_and_the_sandbox_contract() -> None:
    allowed = ("chowder.core", "chowder.domain", "chowder.sandbox.base")
    wrong = [
        f"{_name(path)}: {module}"
        for path in _modules("domain")
        for module in _imports(path)
        if not module.startswith(allowed)
    ]
    assert wrong == []


@pytest.mark.parametrize("adapter", ["chowder.runtime", "chowder.persistence", "chowder.sandbox."])
def test_only_the_composition_roots_import_the_adapters(adapter: str) -> None:
    """The agent runtime, the database and the sandbox providers are chosen and built in one place; everything
    else reaches them through the domain's ports (the sandbox contract, `sandbox.base`, is shared)."""
    package = SRC / adapter.removeprefix("chowder.").strip(".")
    roots = (package, SRC / "cli", SRC / "wiring.py")
    wrong = [
        f"{_name(path)}: {module}"
        for path in _modules()
        if not any(path == root or root in path.parents for root in roots)
        for module in _imports(path)
        if module.startswith(adapter) and module != "chowder.sandbox.base"
    ]
    assert wrong == []


def test_openclaw_vocabulary_stays_in_its_folder() -> None:
    inside = SRC / "runtime" / "openclaw"
    wrong = [
        f"{_name(path)}:{number}: {line.strip()}"
        for path in _modules()
        if inside not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OPENCLAW_VOCABULARY.search(line)
    ]
    assert wrong == []


def test_no_module_is_over_the_size_limit() -> None:
    large = [f"{_name(p)}: {n}" for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert large == []


@pytest.mark.parametrize("path", _modules("api/routes"), ids=lambda p: p.stem)
def test_route_handlers_are_short(path: Path) -> None:
    """A handler parses, authorizes, calls one use case and shapes the answer; more belongs in the domain."""
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_route(decorator) for decorator in node.decorator_list)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_HANDLER_LINES
    ]
    assert long == []


def _is_route(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name) and call.value.id == "router"
