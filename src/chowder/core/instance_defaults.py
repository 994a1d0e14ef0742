"""What a create asks for when it names no model provider or OpenClaw version: the API's defaults, and what the
warm pool boots its members as (so that a default create can claim one)."""

from __future__ import annotations

from chowder.core.model_providers import ModelProvider

DEFAULT_MODEL_PROVIDER = ModelProvider.ANTHROPIC
DEFAULT_VERSION = "v1"  # `openclaw_version`
