"""The web dashboard: static files (plain ES modules, no build step) served by the API process at `/ui`.

Every answer under `/ui` carries a Content-Security-Policy that allows only the server's own scripts, styles and
API (plus `data:`/`blob:` images: a channel's login QR code, a file being viewed), and the page itself never puts
text it received into HTML (`textContent` only), so neither an agent's answer nor a file name can run script."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chowder.core.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/ui"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    # The assets are small and change with the installed version: always revalidated (ETag), never stale.
    "cache-control": "no-cache",
}


class SecurityHeaders:
    """Pure ASGI: adds `SECURITY_HEADERS` to every answer of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def dashboard(settings: Settings) -> ASGIApp:
    """The app mounted at `/ui`: `config.json` (what the page cannot learn from the public API) and the assets."""

    async def config(_: Request) -> Response:
        return JSONResponse({"billing": settings.stripe_secret_key is not None, "dev_model": settings.dev_model})

    routes = [Route("/config.json", config), Mount("/", StaticFiles(directory=STATIC, html=True))]
    return SecurityHeaders(Starlette(routes=routes))


def redirect_to_dashboard(_: Request) -> Response:
    """`/ui` → `/ui/`, so the page's relative asset paths resolve under the mount."""
    return RedirectResponse(f"{PREFIX}/", status_code=307)
