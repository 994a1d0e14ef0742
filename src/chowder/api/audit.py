"""The audit log of state-changing calls, as pure ASGI middleware, innermost: once a POST, PUT, PATCH or DELETE of
an authenticated caller has been answered, an entry records it: the route (`POST /v1/instances/{instance_id}/stop`),
the instance or key it names, the outcome and status, the key and the request id. Calls refused before the app
(rate limits, idempotent replays and conflicts) are not entries: they changed nothing."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from chowder.api.asgi import StatusSeen, app_state
from chowder.domain.audit import audit_entry, outcome_of

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Where authentication leaves the caller's organization (`request.state`, which lives in the scope).
CALLER_ORG = "chowder_org_id"


class AuditTrail:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = app_state(scope)
        if state is None or scope["method"] not in CHANGING:
            await self.app(scope, receive, send)
            return
        answer = StatusSeen(send)
        try:
            await self.app(scope, receive, answer.send)
        finally:
            org_id = scope.get("state", {}).get(CALLER_ORG)
            route = getattr(scope.get("route"), "path", scope["path"])
            if org_id is not None:
                params = scope.get("path_params", {})
                entry = audit_entry(
                    org_id,
                    f"{scope['method']} {route}",
                    instance_id=params.get("instance_id"),
                    target_id=params.get("key_id"),
                    outcome=outcome_of(answer.status),
                    status_code=answer.status,
                )
                await state.audit.record(entry)
