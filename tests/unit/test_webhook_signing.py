"""Webhook signatures (Stripe's scheme, verified by the SDK's `verify_webhook`), the retry schedule and which
addresses a delivery may reach: pure functions, no server."""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime, timedelta

import pytest

from chowder.client import WebhookSignatureError, verify_webhook
from chowder.core.settings import Settings
from chowder.core.webhooks import sign, verify
from chowder.domain.webhook_delivery import is_public, next_attempt_at, payload_of, retry_delay_s
from chowder.domain.webhooks import new_event

SECRET = "whsec_" + "ab" * 32


def test_a_signed_payload_verifies_and_yields_its_event() -> None:
    event = new_event("org-1", "instance.running", {"instance": {"id": "i-1"}})
    payload = payload_of(event)
    header = sign(SECRET, int(time.time()), payload)
    assert header.startswith("t=") and ",v1=" in header
    verified = verify_webhook(payload, header, SECRET)
    assert (verified.id, verified.type, verified.data) == (event.id, "instance.running", {"instance": {"id": "i-1"}})
    assert verified.id.startswith("evt_") and verified.created_at == event.created_at


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    """What a receiver without the SDK computes (Stripe's recipe), checked against a value worked out by hand."""
    assert sign("whsec_k", 1700000000, b'{"a":1}') == (
        "t=1700000000,v1=" + hmac.new(b"whsec_k", b'1700000000.{"a":1}', "sha256").hexdigest()
    )


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("tampered body", "No signature matches"),
        ("wrong secret", "No signature matches"),
        ("too old", "outside the tolerance"),
        ("from the future", "outside the tolerance"),
        ("no v1", "Malformed"),
        ("no timestamp", "Malformed"),
        ("empty", "Malformed"),
    ],
)
def test_anything_else_is_refused(case: str, detail: str) -> None:
    payload, now = b'{"id":"evt_1"}', int(time.time())
    secret, header = SECRET, sign(SECRET, now, payload)
    if case == "tampered body":
        payload = b'{"id":"evt_2"}'
    elif case == "wrong secret":
        secret = "whsec_other"
    elif case in ("too old", "from the future"):
        header = sign(SECRET, now - 301 if case == "too old" else now + 301, payload)
    elif case == "no v1":
        header = f"t={now}"
    elif case == "no timestamp":
        header = header.split(",", 1)[1]
    else:
        header = ""
    with pytest.raises(WebhookSignatureError, match=detail):
        verify(payload, header, secret)


def test_any_of_several_signatures_may_match_and_the_tolerance_is_the_callers() -> None:
    payload, old = b"{}", int(time.time()) - 3600
    header = f"t={old},v1={'0' * 64}," + sign(SECRET, old, payload).split(",")[1]
    verify(payload, header, SECRET, tolerance_s=7200)
    with pytest.raises(WebhookSignatureError):
        verify(payload, header, SECRET)


def test_the_retry_delay_doubles_up_to_its_cap() -> None:
    assert [retry_delay_s(n, 30, 3600) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay_s(10_000, 30, 3600) == 3600


def test_retries_stop_at_the_end_of_the_window() -> None:
    settings = Settings()
    event_at = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_attempt_at(event_at, 1, event_at, settings) == event_at + timedelta(seconds=30)
    late = event_at + timedelta(hours=23, minutes=30)
    assert next_attempt_at(event_at, 20, late, settings) is None, "an hour later is past 24 h"
    assert next_attempt_at(event_at, 20, late - timedelta(minutes=30), settings) == event_at + timedelta(hours=24)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.231.0.1", False),
        ("192.168.1.10", False),
        ("172.16.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_public_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public
