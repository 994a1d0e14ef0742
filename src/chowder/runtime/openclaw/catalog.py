"""The models OpenClaw's release knows for our providers, from the catalogs its provider plugins ship
(`dist/extensions/<plugin>/openclaw.plugin.json`, `modelCatalog.providers.<id>.models`).

Our providers reach the model gateway, so OpenClaw treats them as custom ones and applies no catalog: every model
would be text-only, and a turn's images would never reach it. Declaring the release's own catalog on them gives
each model what OpenClaw itself says it takes, as the release changes, with no list of ours to keep."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chowder.core.model_providers import ModelProvider
from chowder.runtime.openclaw.config import PROVIDER_ENTRIES, CatalogModel

log = logging.getLogger(__name__)


@functools.cache
def shipped_models(package_dir: Path) -> Mapping[ModelProvider, tuple[CatalogModel, ...]]:
    """Each provider's catalog in the `openclaw` package at `package_dir`; a provider whose catalog cannot be read
    has none (its models stay text-only, as before), which is logged."""
    return {provider: _catalog(package_dir, *entry.catalog) for provider, entry in PROVIDER_ENTRIES.items()}


def _catalog(package_dir: Path, plugin: str, provider_id: str) -> tuple[CatalogModel, ...]:
    manifest = package_dir / "dist" / "extensions" / plugin / "openclaw.plugin.json"
    try:
        models = json.loads(manifest.read_text())["modelCatalog"]["providers"][provider_id]["models"]
        return tuple(model for model in map(_model, models) if model is not None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("no model catalog for %s in %s (%s): its models are text-only", provider_id, manifest, exc)
        return ()


def _model(entry: Any) -> CatalogModel | None:
    if not isinstance(entry, dict):
        return None
    fields = (entry.get("id"), entry.get("contextWindow"), entry.get("maxTokens"))
    if not (isinstance(fields[0], str) and isinstance(fields[1], int) and isinstance(fields[2], int)):
        return None
    images = "image" in (entry.get("input") or [])
    return CatalogModel(fields[0], context_window=fields[1], max_tokens=fields[2], images=images)
