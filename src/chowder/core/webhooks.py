"""Lifecycle webhooks as both ends see them: the event types, the headers of a delivery and its signature.

The signature is Stripe's scheme, so receivers can reuse what they know: `Chowder-Signature: t=<unix>,v1=<hex>`,
the hex being HMAC-SHA256 under the endpoint's secret (the whole `whsec_…` string) of `f"{t}.{raw body}"`. The
timestamp is signed with the body, so a captured delivery replayed later fails the receiver's tolerance check.
Shared by the server (`sign`) and the SDK (`verify`), hence here: it imports nothing of ours.
"""

from __future__ import annotations

import hashlib
import hmac
import time

EVENT_TYPES = (
    "instance.running",
    "instance.stopped",
    "instance.error",
    "instance.deleted",
    "instance.upgraded",
    "instance.upgrade_rolled_back",
    "backup.completed",
)

SIGNATURE_HEADER = "Chowder-Signature"
EVENT_ID_HEADER = "Chowder-Event-Id"
EVENT_TYPE_HEADER = "Chowder-Event-Type"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


class WebhookSignatureError(ValueError):
    """A delivery whose signature header is missing, malformed, wrong for the secret, or too old."""


def _digest(secret: str, timestamp: int, payload: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, payload: bytes) -> str:
    """The signature header's value for `payload` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, payload)}"


def verify(payload: bytes, header: str, secret: str, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
    """Raises WebhookSignatureError unless `header` signs exactly `payload` under `secret` within `tolerance_s` of now.
    Several `v1` entries are accepted (any one may match), as Stripe's receivers accept them."""
    parts = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    signatures = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        raise WebhookSignatureError(f"Malformed {SIGNATURE_HEADER} header.")
    timestamp = int(stamps[0])
    if abs(time.time() - timestamp) > tolerance_s:
        raise WebhookSignatureError("The signature's timestamp is outside the tolerance.")
    expected = _digest(secret, timestamp, payload)
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise WebhookSignatureError("No signature matches the payload for this secret.")
