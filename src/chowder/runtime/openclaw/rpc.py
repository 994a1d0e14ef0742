"""The gateway's admin HTTP RPC (bundled `admin-http-rpc` plugin, enabled in every instance's managed
config): ~0.1 s per call where the equivalent CLI call costs seconds of Node start-up."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx

from chowder.core.bounded import IDENTITY, BodyTooLarge, read_body
from chowder.core.errors import GATEWAY_UNAVAILABLE, ChowderError, GatewayUnavailable, ProviderError
from chowder.core.merge_patch import inverse_patch, merge_patch
from chowder.core.settings import MIB

# config.get carries the config twice (raw and parsed), skills.status every skill's metadata: megabytes at most.
_MAX_ANSWER_BYTES = 16 * MIB


async def call(
    http: httpx.AsyncClient, gateway_url: str, token: str, method: str, params: dict[str, Any], timeout_s: float = 15
) -> dict[str, Any]:
    """The method's payload; GatewayUnavailable when the gateway cannot be reached, ProviderError when it
    refuses the call (its code and message are kept)."""
    try:
        async with http.stream(
            "POST",
            f"{gateway_url}/api/v1/admin/rpc",
            json={"method": method, "params": params},
            headers={"Authorization": f"Bearer {token}", **IDENTITY},
            timeout=timeout_s,
        ) as response:
            body = json.loads(await read_body(response, _MAX_ANSWER_BYTES))
    except (httpx.HTTPError, ValueError) as exc:
        raise GatewayUnavailable(GATEWAY_UNAVAILABLE) from exc
    except BodyTooLarge as exc:
        raise ProviderError(str(exc)) from exc
    if not isinstance(body, dict) or not body.get("ok"):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        listed = listed_issues((error.get("details") or {}).get("issues") or [])
        raise ProviderError(f"{error.get('message', body)}" + (f" ({listed})" if listed else ""))
    payload: dict[str, Any] = body.get("payload") or {}
    return payload


def listed_issues(issues: list[Any]) -> str:
    """OpenClaw's validation issues (`[{path, message}]`, from the RPC and `config validate --json` alike)."""
    return "; ".join(f"{i.get('path', '?')}: {i.get('message', '')}" for i in issues if isinstance(i, dict))


class ConfigRefused(ProviderError):
    """The gateway's schema refused a config change; nothing was written."""


@contextlib.contextmanager
def refused_as(error: type[ChowderError], what: str) -> Iterator[None]:
    """A refused change is the client's mistake, not a gateway failure: `error` naming `what` was refused."""
    try:
        yield
    except ConfigRefused as exc:
        raise error(f"OpenClaw refused {what}: {exc.detail}") from exc


_NOT_APPLIED = "persisted but was not applied"


async def patch_config(
    http: httpx.AsyncClient,
    gateway_url: str,
    token: str,
    patch: dict[str, Any],
    timeout_s: float = 60,
) -> dict[str, Any]:
    """A JSON merge patch of the live config, validated by the gateway; returns once it is applied, with the
    config as it now is (secrets redacted).

    ConfigRefused when the schema refuses it (nothing written). When the gateway wrote the file but could not
    apply it (e.g. a plugin failed to load), the keys the patch touched are put back as they were, and
    ProviderError says why. (`config.get` redacts secrets, so the undo is a patch, not a rewrite of the file.)"""
    current = await call(http, gateway_url, token, "config.get", {})
    previous: dict[str, Any] = current.get("parsed") or {}
    params = {"raw": json.dumps(patch), "baseHash": current.get("hash")}
    try:
        await call(http, gateway_url, token, "config.patch", params, timeout_s)
        return merge_patch(previous, patch)
    except ProviderError as exc:
        if _NOT_APPLIED not in str(exc.detail):
            raise ConfigRefused(exc.detail) from exc
        written = await call(http, gateway_url, token, "config.get", {})
        undo = {"raw": json.dumps(inverse_patch(previous, patch)), "baseHash": written.get("hash")}
        await call(http, gateway_url, token, "config.patch", undo, timeout_s)
        raise ProviderError(f"OpenClaw could not apply the change; the previous config is back: {exc.detail}") from exc
