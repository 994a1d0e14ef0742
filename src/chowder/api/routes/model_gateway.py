"""`/model/{provider}/...` on the sandbox-facing listener: the endpoint sandboxes' gateways call for every model
request, and only the routes each provider protocol needs."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from chowder.api.deps import State
from chowder.api.errors import STATUS_BY_ERROR
from chowder.api.state import AppState
from chowder.core.endpoints import MODEL_PATH
from chowder.core.errors import BadRequest, Unauthorized
from chowder.core.model_providers import ProviderProtocol, ProviderSpec, provider_named
from chowder.domain.ports.model_calls import CallSubject, RecordUsage
from chowder.domain.spend import CapReached
from chowder.modelgw.forward import UpstreamUnavailable, echo_answer, forward, presented_credential, provider_error
from chowder.modelgw.usage import model_of

router = APIRouter(include_in_schema=False)

# A spend cap's refusal reaches OpenClaw as an invalid request: a terminal failure of that one turn. As a 402 (or a
# 429) OpenClaw would take it for the provider's billing (or rate) limit and bench the instance's only credential
# for minutes (`concepts/model-failover.md`), failing the turns of every other key of the org on that instance.
_CAP_REFUSAL = 400


@router.api_route(MODEL_PATH + "/{provider}/{tail:path}", methods=["GET", "POST"])
async def model_call(provider: str, tail: str, request: Request, state: State) -> Response:
    """Authenticated by the instance's own credential, never by a customer's API key. With the dev model on,
    the built-in echo model answers and the organization needs no provider key."""
    spec = provider_named(provider)
    if spec is None:  # no protocol of its own to answer in: the OpenAI-compatible shape most providers share
        return provider_error(ProviderProtocol.OPENAI_COMPATIBLE, 404, f"Unknown model provider '{provider}'.")
    if (request.method, tail.strip("/")) not in spec.routes:
        return provider_error(spec.protocol, 404, f"Not a model route: {request.method} /{tail.strip('/')}.")
    exchange = _Exchange(state, spec, tail, request)
    try:
        return await state.model_calls.serve(spec.name, presented_credential(request), exchange)
    except (Unauthorized, BadRequest) as exc:
        return provider_error(spec.protocol, STATUS_BY_ERROR[type(exc)], str(exc.detail))
    except CapReached as exc:  # 400, not 402: see `_CAP_REFUSAL`
        return provider_error(spec.protocol, _CAP_REFUSAL, exc.model_call_message)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """The model call over HTTP: the provider's upstream with the org's key, or the echo model; either way the
    answer streams back in the provider's protocol, errors included."""

    state: AppState
    provider: ProviderSpec
    tail: str
    request: Request

    async def subject(self) -> CallSubject:
        body = await self.request.body()
        return CallSubject(model=model_of(body), session_id=self.state.runtime.session_of_model_call(body))

    async def answer(self, api_key: str | None, on_usage: RecordUsage) -> Response:
        if api_key is None:
            return await echo_answer(self.provider, self.tail, self.request, self.state.runtime.user_words, on_usage)
        state, spec = self.state, self.provider
        base_url = state.settings.model_base_url(spec.name)
        try:
            return await forward(
                state.http, spec, base_url, api_key, self.tail, self.request, state.settings.model_timeout_s, on_usage
            )
        except UpstreamUnavailable as exc:
            return provider_error(spec.protocol, 502, str(exc))
