"""Rendering of openclaw.json: overrides, managed keys, the system prompt block."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chowder.core.errors import BadRequest
from chowder.core.merge_patch import diff_patch, inverse_patch, merge_patch
from chowder.core.model_providers import ModelProvider
from chowder.runtime.openclaw import config
from chowder.runtime.openclaw.catalog import shipped_models
from chowder.runtime.openclaw.versions import resolve_release

PLACEMENT = config.GatewayPlacement(
    port=19123,
    bind="loopback",
    state_dir="/s/root",
    log_file="/s/root/logs/openclaw.log",
    model_base_url="http://10.231.0.1:8001/model",
)


def test_dot_paths_and_nested_objects_mean_the_same() -> None:
    assert config.expand_dot_paths({"a.b.c": 1, "a": {"b": {"d": 2}}, "x": 3}) == {"a": {"b": {"c": 1, "d": 2}}, "x": 3}
    with pytest.raises(ValueError):
        config.expand_dot_paths({"a": 1, "a.b": 2})


def test_merge_patch_is_rfc7386() -> None:
    target = {"a": {"b": 1, "c": 2}, "d": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "e": 3}, "d": [3]}) == {"a": {"c": 2, "e": 3}, "d": [3]}
    assert target == {"a": {"b": 1, "c": 2}, "d": [1, 2]}, "the input is not modified"


def test_render_is_hardened_and_managed_keys_win() -> None:
    rendered = config.render(
        "openai",
        {"gateway": {"bind": "lan", "auth": {"mode": "none"}}, "agents.defaults.timeoutSeconds": 120},
        PLACEMENT,
    )
    gateway = rendered["gateway"]
    assert (gateway["bind"], gateway["auth"], gateway["port"]) == ("loopback", {"mode": "token"}, 19123)
    assert gateway["controlUi"] == {"enabled": False} and gateway["terminal"] == {"enabled": False}
    assert gateway["http"]["endpoints"]["responses"]["enabled"] is True
    assert rendered["agents"]["defaults"]["timeoutSeconds"] == 120
    assert rendered["agents"]["defaults"]["model"]["primary"] == "openai/gpt-4o"
    assert rendered["agents"]["defaults"]["workspace"] == "/s/root/workspace"
    assert rendered["update"] == {"checkOnStart": False}
    assert rendered["models"]["catalogRefresh"] == {"enabled": False}
    assert rendered["logging"]["file"] == "/s/root/logs/openclaw.log"
    for provider in ("anthropic", "openai", "gemini"):
        entry = rendered["models"]["providers"][provider]
        assert entry["baseUrl"].startswith("http://10.231.0.1:8001/model/")
        assert entry["apiKey"] == {"source": "env", "provider": "default", "id": config.MODEL_TOKEN_ENV}
    assert "token" not in json.dumps(rendered["gateway"]["auth"]).replace('"mode": "token"', "")


def test_system_prompt_goes_to_agents_md_not_the_config() -> None:
    rendered = config.render("anthropic", {"agent": {"system_prompt": "Be kind."}}, PLACEMENT)
    assert "agent" not in rendered
    block = config.with_system_prompt("# Mine\n", "Be kind.")
    assert "Be kind." in block and block.endswith("# Mine\n")
    replaced = config.with_system_prompt(block, "Be brief.")
    assert "Be kind." not in replaced and "Be brief." in replaced and "# Mine" in replaced
    assert config.with_system_prompt(replaced, None) == "# Mine\n"


def test_reapply_managed_keeps_other_edits() -> None:
    current = config.render("anthropic", {}, PLACEMENT)
    current["channels"] = {"telegram": {"enabled": True}}
    current["gateway"]["port"] = 1
    moved = config.GatewayPlacement(
        port=19200, bind="loopback", state_dir="/s/root", log_file="/l", model_base_url="http://h:1"
    )
    updated = config.reapply_managed(current, moved)
    assert updated["channels"] == {"telegram": {"enabled": True}}
    assert updated["gateway"]["port"] == 19200
    assert updated["models"]["providers"]["anthropic"]["baseUrl"] == "http://h:1/anthropic"


def test_versions() -> None:
    assert resolve_release("v1").version == "2026.9.6"
    assert resolve_release("2026.9.6").packages[0] == "openclaw@2026.9.6"
    with pytest.raises(BadRequest):
        resolve_release("1999.1.1")


def test_managed_paths_cover_every_managed_key() -> None:
    """MANAGED_PATHS and managed_config() must not drift apart."""
    leaves = config._paths(config.managed_config(PLACEMENT, {}))
    for leaf in leaves:
        assert any(leaf[: len(m)] == m for m in config.MANAGED_PATHS), leaf


def test_overrides_of_managed_keys_are_named() -> None:
    assert config.managed_conflicts({"gateway": {"port": 1, "reload": {"mode": "off"}}}) == ["gateway.port"]
    assert config.managed_conflicts({"gateway": None}) == ["gateway"]
    assert config.managed_conflicts({"models": {"providers": {"anthropic": {"baseUrl": "x"}}}}) == [
        "models.providers.anthropic.baseUrl"
    ]
    assert config.managed_conflicts({"models": {"providers": {"mine": {"baseUrl": "x"}}}}) == []
    assert config.managed_conflicts({"session": {"dmScope": "main"}, "agent": {"system_prompt": "x"}}) == []


def test_only_the_shipped_plugins_a_config_trusts_are_on_the_load_path() -> None:
    plugins = (
        config.ShippedPlugin("whatsapp", "2026.9.6", "/rt/@openclaw/whatsapp"),
        config.ShippedPlugin("line", "2026.9.5", "/rt/@openclaw/line"),
    )
    placement = config.GatewayPlacement(
        port=1, bind="loopback", state_dir="/s", log_file="/l", model_base_url="http://h", plugins=plugins
    )
    fresh = config.render("anthropic", {}, placement)
    assert fresh["plugins"]["load"]["paths"] == []
    trusted = {"plugins": {"entries": {"whatsapp": {"enabled": True}, "line": {"enabled": False}}}}
    assert config.render("anthropic", trusted, placement)["plugins"]["load"]["paths"] == ["/rt/@openclaw/whatsapp"]
    assert config.reapply_managed(trusted, placement)["plugins"]["load"]["paths"] == ["/rt/@openclaw/whatsapp"]
    assert config.managed_conflicts({"plugins": {"load": {"paths": ["/elsewhere"]}}}) == ["plugins.load.paths"]
    assert fresh["plugins"]["installs"] == {}
    trusts_line = {"plugins": {"entries": {"line": {"enabled": True}}}}
    record = config.render("anthropic", trusts_line, placement)["plugins"]["installs"]["line"]
    assert record["source"] == "npm" and record["spec"] == "@openclaw/line@2026.9.5"
    assert record["installPath"] == "/rt/@openclaw/line"


def test_inverse_patch_undoes_exactly_what_a_patch_changed() -> None:
    before = {"channels": {"discord": {"enabled": False, "token": "t"}}, "plugins": {"entries": {"x": {"enabled": 1}}}}
    patch = {
        "channels": {"discord": {"enabled": True, "dmPolicy": "pairing"}},
        "plugins": {"entries": {"discord": {"enabled": True}}, "load": {"paths": ["/p"]}},
        "gone": None,
    }
    undo = inverse_patch(before, patch)
    assert undo == {
        "channels": {"discord": {"enabled": False, "dmPolicy": None}},
        "plugins": {"entries": {"discord": None}, "load": None},
    }
    assert merge_patch(merge_patch(before, patch), undo) == before


def test_the_diff_of_a_warm_gateways_config_to_an_instances_is_the_patch_between_them() -> None:
    """What a claimed warm gateway is patched with: only what the instance's rendering changes."""
    member = config.render(ModelProvider.ANTHROPIC, {}, PLACEMENT)
    instance = config.render(ModelProvider.OPENAI, {"agents": {"defaults": {"timeoutSeconds": 90}}}, PLACEMENT)
    patch = diff_patch(member, instance)
    assert merge_patch(member, patch) == instance
    assert "gateway" not in patch, "the placement is the same sandbox's"
    assert diff_patch(member, member) == {}


def test_every_model_provider_has_an_entry_and_a_managed_path() -> None:
    assert set(config.PROVIDER_ENTRIES) == set(ModelProvider)
    rendered = config.render("gemini", {}, PLACEMENT)
    assert list(rendered["models"]["providers"]) == [provider.value for provider in ModelProvider]
    for provider in ModelProvider:
        assert ("models", "providers", provider.value) in config.MANAGED_PATHS
        primary = config.render(provider.value, {}, PLACEMENT)["agents"]["defaults"]["model"]["primary"]
        assert primary.startswith(f"{provider.value}/")


def test_the_shipped_catalog_is_declared_on_our_providers_with_what_each_model_takes(tmp_path: Path) -> None:
    """OpenClaw applies no catalog to a custom provider: without these entries every model is text-only."""
    manifest = tmp_path / "dist" / "extensions" / "anthropic" / "openclaw.plugin.json"
    manifest.parent.mkdir(parents=True)
    models = [
        {"id": "claude-haiku-4-5", "input": ["text", "image"], "contextWindow": 200000, "maxTokens": 64000},
        {"id": "claude-text", "input": ["text"], "contextWindow": 100000, "maxTokens": 4096},
        {"id": "broken"},
    ]
    manifest.write_text(json.dumps({"modelCatalog": {"providers": {"anthropic": {"models": models}}}}))
    shipped = shipped_models(tmp_path)
    assert [(model.id, model.images) for model in shipped[ModelProvider.ANTHROPIC]] == [
        ("claude-haiku-4-5", True),
        ("claude-text", False),
    ]
    assert shipped[ModelProvider.OPENAI] == (), "an unreadable catalog declares nothing"
    rendered = config.render("anthropic", {}, dataclasses.replace(PLACEMENT, models=shipped))
    declared = rendered["models"]["providers"]["anthropic"]["models"]
    assert declared[0] == {
        "id": "claude-haiku-4-5",
        "name": "claude-haiku-4-5",
        "input": ["text", "image"],
        "contextWindow": 200000,
        "maxTokens": 64000,
    }
    gemini = rendered["models"]["providers"]["gemini"]["models"]
    assert [model["id"] for model in gemini] == ["gemini-2.0-flash"] and gemini[0]["input"] == ["text", "image"]


def test_client_tools_stay_in_the_models_tool_list() -> None:
    """OpenClaw's default Tool Search would hide a caller's function tools behind `tool_search`."""
    assert config.render("anthropic", {}, PLACEMENT)["tools"] == {"toolSearch": {"mode": "directory"}}
