"""The webhook delivery worker: sends the outbox's due deliveries, at least once, each signed, retried with
exponential backoff for a day, and never on the path of a request or of the engine's work.

One loop per process that runs the engine. Each pass claims due deliveries with a lease (a compare-and-set, so
replicas never send one delivery together while its lease holds) and sends each in a task of its own, so a slow
endpoint holds up nothing but itself; an attempt is bounded by `webhook_timeout_s`, the lease by twice that. The
outcome is written back by the lease's holder only. A worker that dies mid-attempt leaves a lease that lapses: the
delivery is sent again (the receiver de-duplicates on the event id, which every attempt carries).

A target is a request the server makes on a tenant's behalf: unless `webhooks_allow_private`, every address its
host resolves to at the attempt must be public, and the request goes to the address checked (the name is not
resolved twice, so it cannot be rebound in between), with the name kept for the Host header and TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.metrics import Metrics
from chowder.core.settings import Settings
from chowder.core.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign
from chowder.domain.ports.storage import Transactions
from chowder.domain.ports.webhooks import AttemptOutcome, DeliveryStatus, DueDelivery, EventRecord

log = logging.getLogger("chowder.webhooks")

MAX_IN_FLIGHT = 32
_MAX_ERROR_CHARS = 500


def retry_delay_s(failed_attempts: int, base_s: float, max_s: float) -> float:
    """The wait after the `failed_attempts`-th failed attempt: `base_s`, doubled each time, at most `max_s`."""
    return float(min(max_s, base_s * 2 ** min(failed_attempts - 1, 62)))


def next_attempt_at(event_at: datetime, failed_attempts: int, now: datetime, settings: Settings) -> datetime | None:
    """When to try again after a failed attempt; None once that would fall past the retry window of the event."""
    delay = retry_delay_s(failed_attempts, settings.webhook_retry_base_s, settings.webhook_retry_max_s)
    later = now + timedelta(seconds=delay)
    return None if later > event_at + timedelta(seconds=settings.webhook_retry_window_s) else later


def payload_of(event: EventRecord) -> bytes:
    """The body of every attempt of `event`'s deliveries (signed as sent, byte for byte)."""
    body = {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "organization_id": event.organization_id,
        "data": event.data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def delivery_client(timeout_s: float, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """No proxy from the environment (it would connect to the name, not the address checked), no redirects
    followed, and no connection kept: a pool keyed by address could carry a request for one host name over a TLS
    session another one verified."""
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), trust_env=False, limits=limits, verify=verify)


class AddressRefused(Exception):
    """The target's host resolves to an address webhooks may not reach (or to none)."""


def is_public(address: str) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved or multicast (an IPv4 address
    mapped into IPv6 judged as itself)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class AddressGuard:
    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def addresses_of(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, in the resolver's order, once every one was found allowed."""
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise AddressRefused(f"Cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not addresses:
            raise AddressRefused(f"Cannot resolve {host}.")
        if not self._allow_private:
            refused = [address for address in addresses if not is_public(address)]
            if refused:
                raise AddressRefused(
                    f"Refused: {host} resolves to {refused[0]}, which is not a public address "
                    "(webhooks reach only public addresses unless CHOWDER_WEBHOOKS_ALLOW_PRIVATE is set)."
                )
        return addresses


class WebhookDeliveries:
    """`clock` and `verify` are the tests' seams: a day of retries without waiting a day; a receiver's TLS
    certificate the tests made (the CAs of `certifi` otherwise)."""

    def __init__(
        self,
        tx: Transactions,
        box: SecretBox,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = utcnow,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._tx = tx
        self._box = box
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._verify = verify
        self._guard = AddressGuard(settings.webhooks_allow_private)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:webhooks:{id(self):x}"
        self._lease = timedelta(seconds=2 * settings.webhook_timeout_s + 5)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    async def run(self) -> None:
        """Forever: claim and send what is due, again at once while there may be more and a slot is free, else
        after the poll interval (an event waits at most that long) or once a slot frees. On the way out, the
        attempts under way are abandoned and their leases freed, so the next worker resends them at once."""
        async with delivery_client(self._settings.webhook_timeout_s, self._verify) as http:
            try:
                while True:
                    try:
                        started = await self.send_due(http)
                    except Exception:
                        log.exception("webhook delivery pass failed (is the database reachable?); trying again")
                        started = []
                    if len(self._in_flight) >= MAX_IN_FLIGHT:
                        self._slot_freed.clear()
                        await self._slot_freed.wait()
                    elif not started:
                        await asyncio.sleep(self._settings.reconcile_interval_s)
            finally:
                for task in self._in_flight:
                    task.cancel()
                await asyncio.gather(*self._in_flight, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await self._tx(lambda uow: uow.webhooks.release(self.owner))

    async def send_due(self, http: httpx.AsyncClient) -> list[asyncio.Task[None]]:
        """Claims as many due deliveries as there are free slots and starts sending each: the attempts started."""
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return []
        now = self._clock()
        claimed = await self._tx(lambda uow: uow.webhooks.claim_due(self.owner, now, now + self._lease, room))
        started = [asyncio.create_task(self._deliver(http, due), name=f"webhook-{due.delivery_id}") for due in claimed]
        for task in started:
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_freed.set()

    async def _deliver(self, http: httpx.AsyncClient, due: DueDelivery) -> None:
        try:
            outcome = await self._attempt(http, due)
            settled = await self._tx(lambda uow: uow.webhooks.settle(due.delivery_id, self.owner, outcome))
        except Exception:  # the database: the lease lapses and the delivery is tried again
            log.exception("webhook delivery %s: attempt not recorded", due.delivery_id)
            return
        if not settled:
            log.warning("webhook delivery %s: lease lost before its outcome was written", due.delivery_id)
        elif outcome.status == DeliveryStatus.FAILED:
            log.warning("webhook delivery %s of %s failed for good: %s", due.delivery_id, due.event.id, outcome.error)

    async def _attempt(self, http: httpx.AsyncClient, due: DueDelivery) -> AttemptOutcome:
        code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self._settings.webhook_timeout_s):
                code = await self._post(http, due)
            label = "delivered" if 200 <= code < 300 else "rejected"
            error = None if label == "delivered" else f"HTTP {code}"
        except AddressRefused as exc:
            label, error = "refused", str(exc)
        except TimeoutError:
            label, error = "unreachable", f"No answer within {self._settings.webhook_timeout_s:g} s."
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            label, error = "unreachable", f"{type(exc).__name__}: {exc}"
        self._metrics.webhook_attempts.labels(label).inc()
        now = self._clock()
        if label == "delivered":
            return AttemptOutcome(DeliveryStatus.DELIVERED, now, None, code)
        later = next_attempt_at(due.event.created_at, due.attempts + 1, now, self._settings)
        status = DeliveryStatus.PENDING if later is not None else DeliveryStatus.FAILED
        return AttemptOutcome(status, now, later, code, (error or "")[:_MAX_ERROR_CHARS])

    async def _post(self, http: httpx.AsyncClient, due: DueDelivery) -> int:
        """One signed POST to the first address checked that takes the connection (nothing was sent to those that
        refused it); the answer's status (its body is never read)."""
        url = httpx.URL(due.url)
        host = url.host
        addresses = await self._guard.addresses_of(host, url.port or (443 if url.scheme == "https" else 80))
        payload = payload_of(due.event)
        headers = {
            "Host": url.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": "Chowder-Webhooks/1",
            EVENT_ID_HEADER: due.event.id,
            EVENT_TYPE_HEADER: due.event.type,
            SIGNATURE_HEADER: sign(self._box.decrypt(due.secret_enc), int(time.time()), payload),
        }
        for address in addresses[:-1]:
            with contextlib.suppress(httpx.ConnectError):
                return await _send(http, url.copy_with(host=address), payload, headers, host)
        return await _send(http, url.copy_with(host=addresses[-1]), payload, headers, host)


async def _send(http: httpx.AsyncClient, to: httpx.URL, payload: bytes, headers: dict[str, str], host: str) -> int:
    """TLS is verified for `host`, the name, though the connection is to an address."""
    request = http.build_request("POST", to, content=payload, headers=headers, extensions={"sni_hostname": host})
    response = await http.send(request, stream=True)
    await response.aclose()
    return response.status_code
