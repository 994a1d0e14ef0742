"""What the fake model server (`tests/fakes/model_server.py`) enforces and reports as the real provider APIs do:
the exact paths they serve, the requests they refuse (and the error bodies their SDKs parse), and the prompt-cache
fields of their usage. The fake is only worth testing against if it rejects what they reject.

The paths are the real ones below the base URL the control plane is configured with (`CHOWDER_<PROVIDER>_BASE_URL`):
https://api.anthropic.com and https://api.openai.com are the fake's root (its `url`), and Gemini's OpenAI-compatible
https://generativelanguage.googleapis.com/v1beta/openai is the fake's `GEMINI_BASE_PATH` (its `gemini_url`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chowder.modelgw.echo import WireProtocol

Provider = Literal["anthropic", "openai", "gemini"]

GEMINI_BASE_PATH = "/v1beta/openai"


@dataclass(frozen=True)
class Endpoint:
    """A model-call path: which provider serves it and in which protocol."""

    provider: Provider
    protocol: WireProtocol


MODEL_CALLS: Mapping[str, Endpoint] = {
    "/v1/messages": Endpoint("anthropic", "anthropic"),
    "/v1/chat/completions": Endpoint("openai", "chat"),
    "/v1/responses": Endpoint("openai", "responses"),
    GEMINI_BASE_PATH + "/chat/completions": Endpoint("gemini", "chat"),
}
# Anthropic and OpenAI both list their models at /v1/models.
MODEL_LISTS: Mapping[str, tuple[Provider, ...]] = {
    "/v1/models": ("anthropic", "openai"),
    GEMINI_BASE_PATH + "/models": ("gemini",),
}


# --- Errors ------------------------------------------------------------------------------------------------------

OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached."),
}
ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Forbidden."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request too large."),
    429: ("rate_limit_error", "Rate limited."),
    529: ("overloaded_error", "Overloaded."),
}


def error_body(protocol: WireProtocol, status: int, message: str | None = None) -> dict[str, Any]:
    """The error shape each provider's SDK parses, with the status's usual message unless one is given; unknown
    statuses fall back to api_error/server_error."""
    if protocol == "anthropic":
        kind, usual = ANTHROPIC_ERRORS.get(status, ("api_error", f"fake failure (HTTP {status})"))
        return {"type": "error", "error": {"type": kind, "message": message or usual}}
    kind, code, usual = OPENAI_ERRORS.get(status, ("server_error", None, f"fake failure (HTTP {status})"))
    return {"error": {"message": message or usual, "type": kind, "param": None, "code": code}}


def unknown_path(method: str, path: str) -> dict[str, Any]:
    """What OpenAI answers (404) for a path it does not serve; a wrong base URL ends here."""
    message = f"Invalid URL ({method} {path})"
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


# --- Refusals ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str | None = None  # None: the status's usual message


def presented_key(provider: Provider, headers: Mapping[str, str]) -> str | None:
    """Anthropic authenticates with `x-api-key`; OpenAI and Gemini's compatible API with a bearer token."""
    if provider == "anthropic":
        return headers.get("x-api-key") or None
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def unauthenticated(providers: tuple[Provider, ...], headers: Mapping[str, str], required: str | None) -> bool:
    """No provider's credential was presented (or, with `required`, not that one)."""
    presented = {presented_key(provider, headers) for provider in providers} - {None}
    return not presented if required is None else required not in presented


def refusal(endpoint: Endpoint, headers: Mapping[str, str], body: dict[str, Any] | None) -> Refusal | None:
    """What the provider refuses in a model call that carries a credential: a body that is not a JSON object and,
    at Anthropic, a missing `anthropic-version` header or `max_tokens`."""
    if body is None:
        return Refusal(400, "The request body is not valid JSON.")
    if endpoint.provider != "anthropic":
        return None
    if not headers.get("anthropic-version"):
        return Refusal(400, "anthropic-version: header is required")
    if not isinstance(body.get("max_tokens"), int):
        return Refusal(400, "max_tokens: Field required")
    return None


# --- Prompt-cache usage ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptCache:
    """Prompt-cache tokens of every answer. Anthropic reports the tokens written to and read from its cache beside
    `input_tokens` (which leaves them out); OpenAI reports the cached part of its prompt inside `prompt_tokens` /
    `input_tokens` (`cached_tokens`, at most the prompt) and no writes."""

    write: int
    read: int

    def billed_input(self, protocol: WireProtocol, input_tokens: int) -> int:
        """All the input tokens a provider charges for (at their own rates): the usage meter's `input_tokens`."""
        return input_tokens + self.write + self.read if protocol == "anthropic" else input_tokens

    def cached(self, prompt_tokens: int) -> int:
        return min(self.read, prompt_tokens)

    def add_to(self, protocol: WireProtocol, payload: dict[str, Any], input_tokens: int) -> dict[str, Any]:
        """`payload` (an answer or one streamed event) with the cache fields in its usage, wherever the protocol
        puts it. Anthropic's `message_delta` repeats the input counts (its usage figures are cumulative)."""
        for holder in (payload, payload.get("message"), payload.get("response")):
            usage = holder.get("usage") if isinstance(holder, dict) else None
            if not isinstance(usage, dict):
                continue
            if protocol == "anthropic":
                usage.update(
                    input_tokens=input_tokens, cache_creation_input_tokens=self.write, cache_read_input_tokens=self.read
                )
            elif protocol == "chat":
                usage["prompt_tokens_details"] = {"cached_tokens": self.cached(usage["prompt_tokens"])}
            else:
                usage["input_tokens_details"] = {"cached_tokens": self.cached(usage["input_tokens"])}
        return payload
