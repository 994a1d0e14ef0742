"""The control plane's Prometheus metrics (`prometheus-client`), one registry per process, served at `/metrics`
(`api/routes/metrics.py`). Counters and histograms are fed where things happen; the instance census and the
engine's queue are read from the database at each scrape, so every replica reports the whole fleet."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a request or a turn (ms to minutes), a boot (seconds to minutes).
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180)
_BOOT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Histogram(
            "chowder_http_request_duration_seconds",
            "API requests by method, route template and status, until their last byte (chat turns included).",
            ("method", "route", "status"),
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.boots = Histogram(
            "chowder_instance_boot_duration_seconds",
            "Gateway boots to ready, by kind: create (first boot), start (a start, restart or recover), wake.",
            ("kind",),
            buckets=_BOOT_BUCKETS,
            registry=registry,
        )
        self.boot_failures = Counter(
            "chowder_instance_boot_failures", "Boots that ended in error, by kind.", ("kind",), registry=registry
        )
        self.stops = Histogram(
            "chowder_instance_stop_duration_seconds", "Gateway stops.", buckets=_BOOT_BUCKETS, registry=registry
        )
        self.gateway_restarts = Counter(
            "chowder_gateway_restarts",
            "Gateways booted again under a running instance: its sandbox died, or a restart replaced it.",
            ("reason",),
            registry=registry,
        )
        self.model_tokens = Counter(
            "chowder_model_tokens", "Tokens of the gateways' model calls.", ("provider", "direction"), registry=registry
        )
        self.rate_limited = Counter(
            "chowder_rate_limit_refusals", "Requests refused with 429, by bucket.", ("bucket",), registry=registry
        )
        self.instances = Gauge(
            "chowder_instances", "Instances by status and sandbox provider.", ("status", "provider"), registry=registry
        )
        self.queue_depth = Gauge(
            "chowder_engine_queue_depth",
            "Instances waiting for the engine (intent unmet, unleased).",
            registry=registry,
        )
        self.lease_takeovers = Counter(
            "chowder_engine_lease_takeovers",
            "Instance leases taken over from a worker that let them lapse unreleased (it died or hung).",
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "chowder_webhook_attempts",
            "Webhook delivery attempts by outcome: delivered (2xx), rejected (another status), unreachable, refused "
            "(a non-public address).",
            ("outcome",),
            registry=registry,
        )

    def count_tokens(self, provider: str, input_tokens: int, output_tokens: int) -> None:
        self.model_tokens.labels(provider, "input").inc(input_tokens)
        self.model_tokens.labels(provider, "output").inc(output_tokens)

    def census(self, by_status_provider: dict[tuple[str, str], int], queue_depth: int) -> None:
        """What a scrape read from the database (a status no instance has has no series, not its last count)."""
        self.instances.clear()
        for (status, provider), count in by_status_provider.items():
            self.instances.labels(status, provider).set(count)
        self.queue_depth.set(queue_depth)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
