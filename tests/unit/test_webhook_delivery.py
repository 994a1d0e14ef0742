"""The webhook delivery worker on a real database, sending to a real HTTP receiver on 127.0.0.1 that the test
starts (`tests/fakes/webhook_receiver.py`): signed deliveries, an outage retried until the receiver is back, a
retried event applied once by a receiver that de-duplicates, the outbox surviving a restart of the worker, two
workers never sending one delivery together, the retry window's end, and non-public targets refused by default."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chowder.core.clock import utcnow
from chowder.core.crypto import SecretBox
from chowder.core.metrics import Metrics
from chowder.core.pagination import PageRequest
from chowder.core.settings import Settings
from chowder.domain.ports.webhooks import DeliveryRecord, DeliveryStatus
from chowder.domain.webhook_delivery import MAX_IN_FLIGHT, WebhookDeliveries, delivery_client
from chowder.domain.webhooks import Webhooks, record_event
from chowder.persistence.store import SqlTransactions
from tests.factories import new_org
from tests.fakes.engine_env import running
from tests.fakes.webhook_receiver import Receiver

pytestmark = pytest.mark.persistence


class Hooks:
    """An organization with webhook endpoints, its events recorded as features record them, and workers."""

    def __init__(self, tx: SqlTransactions, data_dir: Path, **settings: Any) -> None:
        self.tx = tx
        self.box = SecretBox("test")
        self.metrics = Metrics()
        self.org_id = new_org(tx, "Acme")
        fast = {"webhook_retry_base_s": 0.05, "webhook_retry_max_s": 0.2, "webhook_timeout_s": 1.0}
        fast |= {"reconcile_interval_s": 0.02, "webhooks_allow_private": True}
        self.settings = Settings(data_dir=data_dir, **(fast | settings))

    async def endpoint(self, receiver: Receiver, url: str | None = None) -> str:
        """A new endpoint for every event at the receiver (which learns its secret)."""
        record, receiver.secret = await Webhooks(self.tx, self.box).create(self.org_id, url or receiver.url, None, None)
        return record.id

    async def record(self, event_type: str = "instance.running") -> str:
        return await self.tx(lambda uow: record_event(uow, self.org_id, event_type, {"instance": {"id": "i-1"}}))

    async def log(self, endpoint_id: str) -> list[DeliveryRecord]:
        return (await Webhooks(self.tx, self.box).deliveries(self.org_id, endpoint_id, PageRequest())).items

    def worker(self, clock: Callable[[], datetime] = utcnow) -> WebhookDeliveries:
        return WebhookDeliveries(self.tx, self.box, self.settings, self.metrics, clock=clock)

    async def until(
        self, endpoint_id: str, done: Callable[[list[DeliveryRecord]], bool], timeout_s: float = 10
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done(log := await self.log(endpoint_id)):
            assert asyncio.get_running_loop().time() < deadline, f"not there in time: {log}"
            await asyncio.sleep(0.02)

    def attempts(self, outcome: str) -> float:
        return self.metrics.registry.get_sample_value("chowder_webhook_attempts_total", {"outcome": outcome}) or 0


def _all(status: DeliveryStatus) -> Callable[[list[DeliveryRecord]], bool]:
    return lambda log: bool(log) and all(delivery.status == status for delivery in log)


@pytest.fixture
def receiver() -> Any:
    started = Receiver()
    yield started
    started.down()


def test_deliveries_are_signed_and_carry_their_event_id(
    tx: SqlTransactions, data_dir: Path, receiver: Receiver
) -> None:
    hooks = Hooks(tx, data_dir)

    async def scenario() -> None:
        endpoint_id = await hooks.endpoint(receiver)
        event_id = await hooks.record("instance.stopped")
        async with running(hooks.worker()):
            await hooks.until(endpoint_id, _all(DeliveryStatus.DELIVERED))
        [delivery] = await hooks.log(endpoint_id)
        assert (delivery.event_id, delivery.attempts, delivery.last_status_code) == (event_id, 1, 200)
        assert delivery.next_attempt_at is None and delivery.last_error is None
        [got] = receiver.received
        assert got.signature_valid and got.event_id_header == got.body["id"] == event_id
        assert got.body["type"] == "instance.stopped" and got.body["organization_id"] == hooks.org_id
        assert got.body["data"] == {"instance": {"id": "i-1"}}
        assert hooks.attempts("delivered") == 1

    asyncio.run(scenario())


def test_an_outage_is_retried_until_the_receiver_is_back(
    tx: SqlTransactions, data_dir: Path, receiver: Receiver
) -> None:
    """One receiver answers 503 three times; another is down (connections refused) until it comes back."""
    hooks = Hooks(tx, data_dir)
    receiver.answers = [503, 503, 503]
    gone = Receiver()
    gone.down()

    async def scenario() -> None:
        unwell, down = await hooks.endpoint(receiver), await hooks.endpoint(gone)
        event_id = await hooks.record()
        async with running(hooks.worker()):
            await hooks.until(down, lambda log: log[0].attempts >= 3)
            [waiting] = await hooks.log(down)
            assert waiting.status == DeliveryStatus.PENDING and waiting.last_error is not None
            assert waiting.last_error.startswith("ConnectError") and waiting.next_attempt_at is not None
            gone.up()
            await hooks.until(down, _all(DeliveryStatus.DELIVERED))
            await hooks.until(unwell, _all(DeliveryStatus.DELIVERED))
        [served] = await hooks.log(unwell)
        assert (served.attempts, served.last_status_code, served.last_error) == (4, 200, None)
        assert [r.body["id"] for r in receiver.received] == [event_id] * 4
        assert [r.body["id"] for r in gone.received] == [event_id] and gone.received[0].signature_valid
        assert hooks.attempts("rejected") == 3 and hooks.attempts("unreachable") >= 3

    try:
        asyncio.run(scenario())
    finally:
        gone.down()


def test_a_retried_event_is_applied_once_by_a_receiver_that_deduplicates(
    tx: SqlTransactions, data_dir: Path, receiver: Receiver
) -> None:
    """The receiver applies the first delivery, then fails to answer it (500): the retry carries the same event
    id in body and header, so it is recognised and not applied again."""
    hooks = Hooks(tx, data_dir)
    receiver.answers = [500]

    async def scenario() -> None:
        endpoint_id = await hooks.endpoint(receiver)
        first = await hooks.record("instance.running")
        async with running(hooks.worker()):
            await hooks.until(endpoint_id, _all(DeliveryStatus.DELIVERED))
            second = await hooks.record("instance.stopped")
            await hooks.until(endpoint_id, lambda log: len(log) == 2 and _all(DeliveryStatus.DELIVERED)(log))
        assert [(r.event_id_header, r.body["id"]) for r in receiver.received] == [
            (first, first),
            (first, first),
            (second, second),
        ]
        assert dict(receiver.applied) == {first: 1, second: 1}

    asyncio.run(scenario())


def test_the_outbox_survives_a_restart_of_the_worker(tx: SqlTransactions, data_dir: Path, receiver: Receiver) -> None:
    """Events recorded while the receiver is down and while no worker runs are all delivered by a new worker; one
    a dead worker claimed waits for its lease to lapse, then is sent."""
    hooks = Hooks(tx, data_dir)
    receiver.down()

    async def scenario() -> None:
        endpoint_id = await hooks.endpoint(receiver)
        early = await hooks.record()
        async with running(hooks.worker()):
            await hooks.until(endpoint_id, lambda log: log[0].attempts >= 2)
        late = await hooks.record("instance.error")
        claimed_by_the_dead = await hooks.record("backup.completed")
        soon = utcnow() + timedelta(seconds=1)  # every retry due by then
        taken = await tx(lambda uow: uow.webhooks.claim_due("dead", soon, soon + timedelta(seconds=1), 5))
        assert {due.event.id for due in taken} == {early, late, claimed_by_the_dead}, "the stopped worker freed its"
        receiver.up()
        async with running(hooks.worker()):
            await asyncio.sleep(0.5)
            assert receiver.received == [], "every delivery is leased to the dead worker still"
            await hooks.until(endpoint_id, lambda log: len(log) == 3 and _all(DeliveryStatus.DELIVERED)(log))
        assert sorted(r.body["id"] for r in receiver.received) == sorted([early, late, claimed_by_the_dead])

    asyncio.run(scenario())


def test_two_workers_never_send_one_delivery_together(tx: SqlTransactions, data_dir: Path, receiver: Receiver) -> None:
    hooks = Hooks(tx, data_dir)

    async def scenario() -> None:
        endpoint_id = await hooks.endpoint(receiver)
        async with running(hooks.worker(), hooks.worker()):
            recorded = [await hooks.record() for _ in range(30)]
            await hooks.until(endpoint_id, lambda log: len(log) == 30 and _all(DeliveryStatus.DELIVERED)(log))
        assert sorted(r.body["id"] for r in receiver.received) == sorted(recorded)

    asyncio.run(scenario())


def test_a_delivery_fails_for_good_once_a_day_of_retries_is_over(
    tx: SqlTransactions, data_dir: Path, receiver: Receiver
) -> None:
    """The default schedule (30 s doubling to an hour, for 24 h) on an injected clock: no waiting a day."""
    hooks = Hooks(tx, data_dir, webhook_retry_base_s=30.0, webhook_retry_max_s=3600.0)
    receiver.answers = [503] * 1000
    clock = [utcnow()]

    async def scenario() -> list[float]:
        endpoint_id = await hooks.endpoint(receiver)
        await hooks.record()
        clock[0] = utcnow()
        worker = hooks.worker(lambda: clock[0])
        waits: list[float] = []
        async with delivery_client(1.0) as http:
            while True:
                await asyncio.gather(*await worker.send_due(http))
                [delivery] = await hooks.log(endpoint_id)
                if delivery.next_attempt_at is None:
                    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error == "HTTP 503"
                    assert delivery.attempts == len(receiver.received) == len(waits) + 1
                    return waits
                waits.append((delivery.next_attempt_at - clock[0]).total_seconds())
                clock[0] = delivery.next_attempt_at

    waits = asyncio.run(scenario())
    assert waits[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600] and set(waits[8:]) == {3600}
    assert 23 * 3600 < sum(waits) <= 24 * 3600 < sum(waits) + 3600, "the last attempt within the day"


def test_non_public_targets_are_refused_by_default(tx: SqlTransactions, data_dir: Path, receiver: Receiver) -> None:
    hooks = Hooks(tx, data_dir, webhooks_allow_private=False)

    async def scenario() -> None:
        loopback = await hooks.endpoint(receiver)
        named = await hooks.endpoint(receiver, f"http://localhost:{receiver.port}/hooks")
        await hooks.record()
        worker = hooks.worker()
        async with delivery_client(1.0) as http:
            await asyncio.gather(*await worker.send_due(http))
        for endpoint_id, host in ((loopback, "127.0.0.1"), (named, "localhost")):
            [refused] = await hooks.log(endpoint_id)
            assert (refused.status, refused.attempts, refused.last_status_code) == (DeliveryStatus.PENDING, 1, None)
            assert refused.last_error is not None and refused.last_error.startswith(f"Refused: {host} resolves to ")
            assert "not a public address" in refused.last_error
        assert receiver.received == [] and hooks.attempts("refused") == 2

    asyncio.run(scenario())


def _certificate(directory: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for `name`: the receiver's server context, and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


@pytest.mark.parametrize("certified", ["localhost", "elsewhere.example"])
def test_tls_is_verified_for_the_host_name_though_the_connection_is_to_its_address(
    tx: SqlTransactions, data_dir: Path, certified: str
) -> None:
    """https://localhost:<port>: the worker connects to 127.0.0.1, the address it checked, and still verifies the
    receiver's certificate for `localhost` (SNI and name check): a certificate for another name is refused."""
    hooks = Hooks(tx, data_dir)
    server_tls, trusting = _certificate(data_dir, certified)
    receiver = Receiver(tls=server_tls)

    async def scenario() -> DeliveryRecord:
        endpoint_id = await hooks.endpoint(receiver, f"https://localhost:{receiver.port}/hooks")
        await hooks.record()
        async with running(WebhookDeliveries(hooks.tx, hooks.box, hooks.settings, hooks.metrics, verify=trusting)):
            await hooks.until(endpoint_id, lambda log: log[0].attempts > 0)
        [delivery] = await hooks.log(endpoint_id)
        return delivery

    try:
        delivery = asyncio.run(scenario())
    finally:
        receiver.down()
    if certified == "localhost":
        assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 200)
        assert receiver.received[0].signature_valid
    else:
        assert delivery.status == DeliveryStatus.PENDING and receiver.received == []
        assert delivery.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error


def test_a_backlog_is_sent_batch_after_batch_without_waiting_for_the_poll(
    tx: SqlTransactions, data_dir: Path, receiver: Receiver
) -> None:
    """Three batches (a worker's MAX_IN_FLIGHT attempts each) go out back to back, not one batch per poll interval
    (30 s here)."""
    hooks = Hooks(tx, data_dir, reconcile_interval_s=30.0)

    async def scenario() -> None:
        endpoint_id = await hooks.endpoint(receiver)
        for _ in range(3 * MAX_IN_FLIGHT):
            await hooks.record()
        async with running(hooks.worker()):
            await hooks.until(endpoint_id, lambda log: _all(DeliveryStatus.DELIVERED)(log), timeout_s=15)
        assert len(receiver.received) == 3 * MAX_IN_FLIGHT

    asyncio.run(scenario())
