"""The model provider registry: every provider is fully described, and what reads it sees the same providers."""

from __future__ import annotations

import pytest

from chowder.core.model_providers import PROVIDERS, ModelProvider, provider_named, provider_of_model
from chowder.core.settings import Settings
from chowder.modelgw import echo
from chowder.schemas.instances import InstanceCreate
from chowder.schemas.organization import OrganizationUpdate


def test_every_provider_has_exactly_one_spec_under_its_own_name() -> None:
    assert list(PROVIDERS) == list(ModelProvider)
    for provider, spec in PROVIDERS.items():
        assert spec.name is provider
        assert provider_named(provider.value) is spec
    assert provider_named("moon") is None


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("claude-sonnet-4-20250514", ModelProvider.ANTHROPIC),
        ("Claude-3-Opus", ModelProvider.ANTHROPIC),
        ("gpt-4o", ModelProvider.OPENAI),
        ("o1-preview", ModelProvider.OPENAI),
        ("o3-mini", ModelProvider.OPENAI),
        ("o4-mini", ModelProvider.OPENAI),
        ("chatgpt-4o-latest", ModelProvider.OPENAI),
        ("gemini-2.0-flash", ModelProvider.GEMINI),
        ("llama-3", None),
        ("mistral-large", None),
    ],
)
def test_bare_model_names_infer_their_provider_by_prefix(model: str, provider: ModelProvider | None) -> None:
    assert provider_of_model(model) == provider


def test_no_prefix_is_claimed_twice_so_the_order_of_the_entries_never_matters() -> None:
    prefixes = [(prefix, spec.name) for spec in PROVIDERS.values() for prefix in spec.model_prefixes]
    for prefix, provider in prefixes:
        assert prefix == prefix.lower()
        assert [other for other, owner in prefixes if owner != provider and other.startswith(prefix)] == []


def test_every_provider_has_routes_and_one_the_dev_model_answers() -> None:
    for spec in PROVIDERS.values():
        assert spec.routes, spec.name
        for method, path in spec.routes:
            assert method in {"GET", "POST"} and path and not path.startswith("/"), (spec.name, method, path)
        answered = [path for method, path in spec.routes if method == "POST" and echo.protocol_for("/" + path)]
        assert answered, f"the dev model answers no route of {spec.name}"


def test_each_upstream_is_a_settings_field_set_by_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in PROVIDERS.values():
        assert Settings.model_fields[spec.base_url_setting].annotation is str, spec.name
        monkeypatch.setenv(f"CHOWDER_{spec.base_url_setting.upper()}", f"http://fake/{spec.name}")
    settings = Settings()
    for provider in ModelProvider:
        assert settings.model_base_url(provider) == f"http://fake/{provider}"


def test_the_defaults_are_the_providers_own_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in PROVIDERS.values():
        monkeypatch.delenv(f"CHOWDER_{spec.base_url_setting.upper()}", raising=False)
    settings = Settings()
    assert settings.model_base_url(ModelProvider.ANTHROPIC) == "https://api.anthropic.com"
    assert settings.model_base_url(ModelProvider.OPENAI) == "https://api.openai.com"
    gemini = "https://generativelanguage.googleapis.com/v1beta/openai"
    assert settings.model_base_url(ModelProvider.GEMINI) == gemini


def test_the_wire_schemas_offer_exactly_the_registered_providers() -> None:
    names = [provider.value for provider in ModelProvider]
    for schema in (InstanceCreate.model_json_schema(), OrganizationUpdate.model_json_schema()):
        assert schema["$defs"]["ModelProvider"]["enum"] == names
    assert InstanceCreate(name="a").model_provider is ModelProvider.ANTHROPIC
