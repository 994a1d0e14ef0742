"""Server settings: one pydantic-settings object, read from `CHOWDER_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chowder.core.images import DEFAULT_IMAGE
from chowder.core.model_providers import PROVIDERS, ModelProvider

# Settings give sizes in MiB (`*_mb`); this turns them into bytes.
MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything the server reads from its environment, with safe defaults for one host."""

    model_config = SettingsConfigDict(env_prefix="CHOWDER_", extra="ignore")

    data_dir: Path = Field(Path(".chowder"), description="Database, secrets and sandboxes live here.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite in the data dir when unset.")
    secret_key: SecretStr | None = Field(
        None, description="Key that encrypts secrets at rest; generated into the data dir when unset."
    )
    runtime_dir: Path | None = Field(
        None, description="Shared OpenClaw runtime cache (Node + npm packages); <data_dir>/runtime when unset."
    )
    sandbox_provider: Literal["process", "docker", "kubernetes"] = Field(
        "process",
        description="Provider for new instances: host processes, containers of the engine at DOCKER_HOST, or pods "
        "of the cluster of the kubeconfig (KUBECONFIG, ~/.kube/config, or the pod's own service account).",
    )
    sandbox_isolation: Literal["auto", "none"] = Field(
        "auto", description="auto: every isolation mechanism the host offers; none: plain processes (dev only)."
    )
    model_port: int = Field(
        8001,
        description="Port of the model endpoint, the one listener sandboxes reach (on the sandbox network's host "
        "address, never on the API's address).",
    )
    sandbox_subnet: str = Field(
        "10.231.0.0/16", description="IPv4 block for sandbox networks (a /30 each); must not overlap the host's."
    )
    docker_image: str = Field(
        DEFAULT_IMAGE, description="docker: the gateway image (`chowder runtime image` builds it under this tag)."
    )
    docker_runtime: str | None = Field(
        None, description="docker: the OCI runtime of sandbox containers (e.g. runsc for gVisor); the engine's default."
    )
    docker_subnet: str = Field(
        "10.232.0.0/16", description="docker: IPv4 block for the sandboxes' own bridge networks (a /29 each)."
    )
    kubernetes_namespace: str = Field("chowder-sandboxes", description="kubernetes: the namespace of the sandboxes.")
    kubernetes_image: str = Field(
        DEFAULT_IMAGE, description="kubernetes: the gateway image as the cluster pulls it (`chowder runtime image`)."
    )
    kubernetes_runtime_class: str | None = Field(
        None, description="kubernetes: the RuntimeClass of sandbox pods (e.g. gvisor, kata); the cluster's default."
    )
    kubernetes_storage_class: str | None = Field(
        None, description="kubernetes: the StorageClass of sandbox claims; the cluster's default."
    )
    kubernetes_control_plane_namespace: str = Field(
        "chowder", description="kubernetes: where the control plane runs (its pods alone reach sandboxes)."
    )
    kubernetes_model_url: str | None = Field(
        None,
        description="kubernetes: the model endpoint as sandboxes reach it; the control plane's model Service when "
        "unset.",
    )
    gateway_port_min: int = Field(19100, description="First host port handed to gateways (isolation none only).")
    gateway_port_max: int = Field(19999, description="Last host port handed to gateways (isolation none only).")
    sandbox_uid_base: int = Field(200000, description="Host uid of the first sandbox (root only).")
    sandbox_memory_mb: int = Field(3072, description="Memory limit of one sandbox (cgroup).")
    sandbox_cpus: float = Field(2.0, description="CPU limit of one sandbox, in cores (cgroup).")
    sandbox_pids: int = Field(1024, description="Process limit of one sandbox (cgroup).")
    sandbox_disk_mb: int = Field(
        2048, gt=0, description="Disk quota of one sandbox: the size of its own filesystem, fixed when it is created."
    )
    host_reserved_mb: int = Field(
        1024, ge=0, description="Memory kept for the control plane and the host: all sandboxes together get the rest."
    )
    node_compile_cache: bool = Field(
        False, description="Node compile cache per sandbox: faster cold starts, ~300 MiB more memory each."
    )
    provision_timeout_s: float = Field(240.0, description="Longest a create may take before the instance errors.")
    max_parallel_boots: int = Field(
        3, ge=1, description="Gateways one engine boots at once (a boot is CPU-heavy for ~20 s); the rest queue."
    )
    boot_memory_mb: int = Field(
        1536,
        ge=0,
        description="Memory a gateway needs to boot on this host: a create waits (provisioning, its reason in "
        "error_message) while the host's available memory, less that of the boots under way, is below it; 0: no "
        "check. Not applied to the kubernetes provider, whose scheduler places pods.",
    )
    start_timeout_s: float = Field(180.0, description="Longest a start may take before the instance errors.")
    upgrade_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest the new release of an upgrade may take to answer /readyz and a health turn; past it "
        "the upgrade is rolled back.",
    )
    stop_grace_s: float = Field(10.0, description="SIGTERM grace before a sandbox is killed.")
    reconcile_interval_s: float = Field(2.0, description="How often the engine looks for work when not woken.")
    observe_interval_s: float = Field(10.0, description="How often a running sandbox is checked for liveness.")
    lease_s: float = Field(30.0, description="How long a worker's claim on an instance lasts without renewal.")
    freeze_after_s: int | None = Field(
        None, description="Default `auto_stop.freeze_after_s` of new instances; set with stop_after_s, or neither."
    )
    stop_after_s: int | None = Field(
        None, description="Default `auto_stop.stop_after_s` of new instances; set with freeze_after_s, or neither."
    )
    warm_pool_size: int = Field(
        0,
        ge=0,
        le=64,
        description="Gateways booted ahead of demand for the sandbox provider and the default OpenClaw release: a "
        "create claims one and runs within a second; each holds a gateway's memory while it waits.",
    )
    # One upstream per model provider, each named by its `ProviderSpec.base_url_setting`; read through
    # `model_base_url`.
    anthropic_base_url: str = Field("https://api.anthropic.com", description="Anthropic upstream (no /v1).")
    openai_base_url: str = Field("https://api.openai.com", description="OpenAI upstream (no /v1).")
    gemini_base_url: str = Field(
        "https://generativelanguage.googleapis.com/v1beta/openai",
        description="Gemini upstream: Google's OpenAI-compatible endpoint.",
    )
    response_timeout_s: float = Field(
        180.0, description="Longest wait for a gateway's answer to one /responses call (streams: between events)."
    )
    clawhub_url: str | None = Field(
        None, description="The ClawHub registry skill installs use (a mirror, a self-hosted one); unset: OpenClaw's."
    )
    skill_install_timeout_s: float = Field(180.0, description="Longest a skill install from ClawHub may take.")
    stripe_secret_key: str | None = Field(None, description="Stripe API key; billing routes answer 503 without it.")
    stripe_webhook_secret: str | None = Field(None, description="Signing secret of the Stripe webhook endpoint.")
    stripe_price_crab: str | None = Field(None, description="Stripe price id of the crab tier (per instance).")
    stripe_price_lobster: str | None = Field(None, description="Stripe price id of the lobster tier (per instance).")
    stripe_success_url: str = Field("http://localhost:8000/billing/success", description="Checkout success page.")
    stripe_cancel_url: str = Field("http://localhost:8000/billing/cancel", description="Checkout cancel page.")
    stripe_portal_return_url: str = Field("http://localhost:8000/", description="Where the billing portal returns.")
    stripe_api_base: str | None = Field(None, description="Stripe API address (a proxy or a test server).")
    stripe_sync_retry_s: float = Field(
        30.0, description="How long a failed push of a subscription's quantity to Stripe waits before its retry."
    )
    max_request_mb: int = Field(
        1,
        description="Largest request body of a JSON route, 413 beyond; the file writing routes (upload, write) take "
        "up to max_upload_mb, chat and model calls up to max_model_request_mb. Bodies are refused as they arrive, "
        "never held past the limit.",
    )
    max_upload_mb: int = Field(
        100,
        description="Largest file accepted by the files API (upload or write), 413 beyond; its request body may "
        "exceed it only by the multipart or JSON framing around the file.",
    )
    max_model_request_mb: int = Field(
        32,
        description="Largest body of a chat call (/responses) and of a gateway's model call: a whole conversation "
        "with its images, which outgrows max_request_mb; 32 MiB is what Anthropic's Messages API accepts.",
    )
    model_timeout_s: float = Field(120.0, description="Longest wait for a model provider's answer.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per log line (with the request id), for a log pipeline."
    )
    metrics_token: str | None = Field(
        None,
        description="Bearer token of the Prometheus scraper: /metrics is served only when set, only to it.",
    )
    workers: int = Field(
        1,
        ge=1,
        description="API worker processes of `chowder serve` on its one port (the engine runs once, in the "
        "process supervising them). More than one needs PostgreSQL; each enforces its share of the rate limits.",
    )
    auth_cache_s: float = Field(
        1.0,
        ge=0,
        description="How long a process keeps a key that authenticated before looking it up again; a key revoked "
        "through another process (worker, replica) still works here for up to this long. 0: look up every time.",
    )
    rate_limit_key_per_min: int = Field(
        1200,
        ge=0,
        description="Requests per minute of each API key (of each client address for requests without one), "
        "spendable at once and returned evenly; 429 beyond. 0: no limit. Per API replica.",
    )
    rate_limit_org_per_min: int = Field(
        6000, ge=0, description="Requests per minute of each organization, all its keys together; 0: no limit."
    )
    rate_limit_signup_per_hour: int = Field(
        20, ge=0, description="Signups per hour from one client address; 0: no limit."
    )
    webhooks_allow_private: bool = Field(
        False,
        description="Deliver webhooks to loopback, private, link-local and other non-public addresses too (tests, a "
        "trusted internal network). Off: an attempt whose host resolves to one is refused, as its delivery log says.",
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Longest one webhook delivery attempt may take.")
    webhook_retry_base_s: float = Field(
        30.0, gt=0, description="Wait after a webhook delivery's first failed attempt; doubled after each further one."
    )
    webhook_retry_max_s: float = Field(3600.0, gt=0, description="Longest wait between two attempts of a webhook.")
    webhook_retry_window_s: float = Field(
        86400.0, gt=0, description="How long after its event a webhook delivery is retried before it is `failed`."
    )
    backup_store: Literal["local", "s3"] = Field(
        "local",
        description="Where backup archives are kept: `local`, files under backup_dir; `s3`, an S3-compatible bucket "
        "(backup_s3_*).",
    )
    backup_dir: Path | None = Field(None, description="local: the directory of backup archives; <data_dir>/backups.")
    backup_s3_endpoint: str | None = Field(
        None, description="s3: the service's URL (MinIO, R2, ...); https://s3.<region>.amazonaws.com when unset."
    )
    backup_s3_bucket: str | None = Field(None, description="s3: the bucket (it must exist).")
    backup_s3_prefix: str = Field("chowder-backups/", description="s3: prepended to every archive's key.")
    backup_s3_region: str = Field("us-east-1", description="s3: the region requests are signed for.")
    backup_s3_access_key_id: str | None = Field(None, description="s3: the access key id.")
    backup_s3_secret_access_key: SecretStr | None = Field(None, description="s3: the secret access key.")
    backup_timeout_s: float = Field(
        600.0, gt=0, description="Longest a backup may take (its archive made and stored) before it fails."
    )
    backup_quiesce_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest a running gateway's work may take to drain before its backup (new work waits "
        "meanwhile); the backup fails if it is still busy then.",
    )
    dev_model: bool = Field(
        False,
        description="Replace every model provider with the built-in echo model (no provider key needed; the "
        "reply echoes the conversation). For trying Chowder and for tests: never use it in production.",
    )

    @model_validator(mode="after")
    def _auto_stop_pair(self) -> Settings:
        if (self.freeze_after_s is None) != (self.stop_after_s is None):
            raise ValueError("CHOWDER_FREEZE_AFTER_S and CHOWDER_STOP_AFTER_S are set together, or neither.")
        if self.freeze_after_s is not None and self.stop_after_s is not None:
            if not 2 <= self.freeze_after_s <= self.stop_after_s:
                raise ValueError("CHOWDER_FREEZE_AFTER_S must be at least 2 and at most CHOWDER_STOP_AFTER_S.")
        return self

    @property
    def stripe_prices(self) -> dict[str, str]:
        """Paid tier → Stripe price id, for the tiers this server sells."""
        prices = {"crab": self.stripe_price_crab, "lobster": self.stripe_price_lobster}
        return {tier: price for tier, price in prices.items() if price}

    def model_base_url(self, provider: ModelProvider) -> str:
        """The upstream the model gateway forwards this provider's calls to."""
        url: str = getattr(self, PROVIDERS[provider].base_url_setting)
        return url

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'chowder.db').resolve()}"

    @property
    def resolved_runtime_dir(self) -> Path:
        return (self.runtime_dir or self.data_dir / "runtime").resolve()
