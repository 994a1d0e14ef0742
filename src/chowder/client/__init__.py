"""The Python SDK of the Chowder API: `Chowder` (blocking) and `AsyncChowder` (asyncio), typed with the
server's own wire models (`chowder.schemas`). Needs only httpx and pydantic: importing it loads no server code.

    from chowder.client import Chowder

    with Chowder("http://127.0.0.1:8000", "chd_org_...") as chowder:
        instance = chowder.instances.create("helper")
        chowder.instances.wait_until_running(instance.id, on_progress=print)
        for text in chowder.responses.stream(instance.id, "Hello!", model="claude-sonnet-4-20250514").text():
            print(text, end="", flush=True)
"""

from chowder.client.aio import AsyncChowder
from chowder.client.calls import Page, ReportPage
from chowder.client.errors import (
    BadRequest,
    ChowderError,
    Conflict,
    Forbidden,
    GatewayUnavailable,
    InstanceFailed,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
    WaitTimeout,
)
from chowder.client.routes import NOT_GIVEN
from chowder.client.streams import AsyncDownload, AsyncEventStream, Download, EventStream
from chowder.client.sync import Chowder
from chowder.client.transport import Retries
from chowder.client.waiting import Progress
from chowder.client.webhooks import verify_webhook
from chowder.core.webhooks import WebhookSignatureError

__all__ = [
    "NOT_GIVEN",
    "AsyncChowder",
    "AsyncDownload",
    "AsyncEventStream",
    "BadRequest",
    "Chowder",
    "ChowderError",
    "Conflict",
    "Download",
    "EventStream",
    "Forbidden",
    "GatewayUnavailable",
    "InstanceFailed",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "PaymentRequired",
    "Progress",
    "RateLimited",
    "ReportPage",
    "Retries",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "WaitTimeout",
    "WebhookSignatureError",
    "verify_webhook",
]
