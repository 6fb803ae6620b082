"""Configuration of the HTTP API, from the environment (the event store's own is commands/config.py).

TRAFI_SECRET_KEY          hex or text; derives every bearer token (API keys, sessions, reset links).
                          Every API process of a deployment must share it. Unset: a random key is
                          created once in TRAFI_DATA_DIR/secret.key (embedded mode).
TRAFI_DATA_DIR            where embedded mode keeps its files (default ./trafi-data)
TRAFI_REDIS_URL           e.g. redis://127.0.0.1:6379/0 — shared rate limits; unset: in-process buckets
TRAFI_RATE_STOREFRONT     "<per second>/<burst>" per publishable key and client address (default 20/60)
TRAFI_RATE_ADMIN          per secret key or admin user (default 50/100)
TRAFI_RATE_ANONYMOUS      per client address for requests without a valid credential (default 10/30)
TRAFI_RATE_EVENTS         storefront events (POST /v1/events) per key and client address (default 50/200)
TRAFI_CORS_ORIGINS        comma-separated origins allowed to call the API from a browser (default none)
TRAFI_MAX_BODY_BYTES      larger request bodies get 413 (default 1048576)
TRAFI_EMBEDDED_PROJECTIONS  1 (default): this process keeps the read models current; 0: workers do
TRAFI_READY_MAX_LAG       /readyz fails when a projection is more events behind than this (default 10000)
TRAFI_SMTP_HOST / _PORT   outgoing mail (password reset); unset: mails are written to the log
TRAFI_MAIL_FROM           sender address (default no-reply@trafi.local)
TRAFI_STOREFRONT_URL      base of links in e-mails (default http://localhost:3000)
TRAFI_WEBHOOKS_ALLOW_PRIVATE  1: webhooks may go to private, loopback and link-local addresses (default 0)
TRAFI_WEBHOOKS_TIMEOUT_S      per webhook request: connect, write, read, each (default 10)
TRAFI_WEBHOOKS_CONCURRENCY    webhook requests in flight per deliverer (default 8)
TRAFI_WEBHOOKS_BACKOFF_SCALE  multiplies the retry delays, 1 min … 16 h (default 1; tests use a tiny one)
TRAFI_KAFKA_*             see projections/kafka/config.py (the relay's lag appears in /metrics)
TRAFI_WEBHOOKS_EMBEDDED       1 (default): with embedded projections, this process also delivers webhooks;
                              0: `trafi webhooks deliver` workers do
TRAFI_WAREHOUSE_PATH      the DuckDB analytics warehouse (default TRAFI_DATA_DIR/warehouse.duckdb); with embedded
                          projections and no TRAFI_ANALYTICS_URL this process owns and feeds it
TRAFI_ANALYTICS_URL       e.g. http://analytics:8100 — `trafi analytics run`, to which /v1/admin/analytics/funnel
                          and …/overview are forwarded (unset: answered here, from the embedded warehouse)
TRAFI_ANALYTICS_JOBS      1 (default): the embedded warehouse's owner also runs the scheduled analytics jobs
                          (the daily diagnosis); `trafi analytics run` always does
TRAFI_PAYMENT_FEE_BP / TRAFI_PAYMENT_FEE_FIXED_MINOR  the payment fee estimate of gross profit (default 140 bp + 25)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from commands.config import EventStoreConfig
from projections.kafka.config import KafkaConfig
from projections.webhooks.deliverer import DeliveryOptions


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        per_second, _, burst = text.partition("/")
        rate = cls(float(per_second), int(burst or max(1, float(per_second))))
        if rate.per_second <= 0 or rate.burst < 1:
            raise ValueError(f"a rate needs a positive refill and burst, not {text!r}")
        return rate


@dataclass(frozen=True)
class ApiSettings:
    event_store: EventStoreConfig = field(default_factory=EventStoreConfig)
    secret_key: bytes = b""
    redis_url: str | None = None
    storefront_rate: Rate = Rate(20, 60)
    admin_rate: Rate = Rate(50, 100)
    anonymous_rate: Rate = Rate(10, 30)
    events_rate: Rate = Rate(50, 200)  # POST /v1/events: its own budget, not the shopper's
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    embedded_projections: bool = True
    ready_max_lag: int = 10_000
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "no-reply@trafi.local"
    storefront_url: str = "http://localhost:3000"
    webhooks_allow_private: bool = False
    webhooks_timeout_s: float = 10.0
    webhooks_concurrency: int = 8
    webhooks_backoff_scale: float = 1.0
    webhooks_embedded: bool = True
    payment_provider: str = "sandbox"  # new payments go here; "stripe" needs the Stripe keys below
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # tests point the SDK at a local server
    refund_retry_s: float = 60.0  # embedded mode: how often pending refunds are retried
    kafka: KafkaConfig | None = None  # TRAFI_KAFKA_*: the relay's lag is in /metrics when set
    bench_baseline: bool = False  # TRAFI_BENCH_BASELINE=1: mount the accept-only route bench/ingest.py compares with
    # from_env: TRAFI_DATA_DIR/warehouse.duckdb; settings made in code (tests) get a throw-away in-memory one;
    # None: no warehouse in this process.
    warehouse_path: str | None = ":memory:"
    analytics_url: str | None = None  # the analytics worker; set, the analytics routes are forwarded to it
    analytics_jobs: bool = False  # the embedded warehouse's owner also runs the scheduled jobs (from_env: on)
    payment_fee_bp: int = 140  # gross profit's payment fee estimate: rate in basis points …
    payment_fee_fixed_minor: int = 25  # … plus this per paid order

    @classmethod
    def from_env(cls, environ: dict | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("TRAFI_DATA_DIR", "trafi-data"))
        return cls(
            event_store=EventStoreConfig.from_env(env),
            secret_key=_secret_key(env.get("TRAFI_SECRET_KEY"), data_dir),
            redis_url=env.get("TRAFI_REDIS_URL") or None,
            storefront_rate=Rate.parse(env.get("TRAFI_RATE_STOREFRONT", "20/60")),
            admin_rate=Rate.parse(env.get("TRAFI_RATE_ADMIN", "50/100")),
            anonymous_rate=Rate.parse(env.get("TRAFI_RATE_ANONYMOUS", "10/30")),
            events_rate=Rate.parse(env.get("TRAFI_RATE_EVENTS", "50/200")),
            cors_origins=tuple(o.strip() for o in env.get("TRAFI_CORS_ORIGINS", "").split(",") if o.strip()),
            max_body_bytes=int(env.get("TRAFI_MAX_BODY_BYTES", 1024 * 1024)),
            embedded_projections=env.get("TRAFI_EMBEDDED_PROJECTIONS", "1") not in ("0", "false", "no"),
            ready_max_lag=int(env.get("TRAFI_READY_MAX_LAG", 10_000)),
            smtp_host=env.get("TRAFI_SMTP_HOST") or None,
            smtp_port=int(env.get("TRAFI_SMTP_PORT", 25)),
            mail_from=env.get("TRAFI_MAIL_FROM", cls.mail_from),
            storefront_url=env.get("TRAFI_STOREFRONT_URL", cls.storefront_url).rstrip("/"),
            webhooks_allow_private=_flag(env.get("TRAFI_WEBHOOKS_ALLOW_PRIVATE"), default=False),
            webhooks_timeout_s=float(env.get("TRAFI_WEBHOOKS_TIMEOUT_S", 10)),
            webhooks_concurrency=int(env.get("TRAFI_WEBHOOKS_CONCURRENCY", 8)),
            webhooks_backoff_scale=float(env.get("TRAFI_WEBHOOKS_BACKOFF_SCALE", 1)),
            webhooks_embedded=_flag(env.get("TRAFI_WEBHOOKS_EMBEDDED"), default=True),
            payment_provider=env.get("TRAFI_PAYMENT_PROVIDER", cls.payment_provider),
            kafka=KafkaConfig.from_env(env),
            stripe_secret_key=env.get("TRAFI_STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("TRAFI_STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("TRAFI_STRIPE_API_BASE") or None,
            refund_retry_s=float(env.get("TRAFI_REFUND_RETRY_S", 60)),
            bench_baseline=_flag(env.get("TRAFI_BENCH_BASELINE"), default=False),
            warehouse_path=env.get("TRAFI_WAREHOUSE_PATH") or str(data_dir / "warehouse.duckdb"),
            analytics_url=(env.get("TRAFI_ANALYTICS_URL") or "").rstrip("/") or None,
            analytics_jobs=_flag(env.get("TRAFI_ANALYTICS_JOBS"), default=True),
            payment_fee_bp=int(env.get("TRAFI_PAYMENT_FEE_BP", 140)),
            payment_fee_fixed_minor=int(env.get("TRAFI_PAYMENT_FEE_FIXED_MINOR", 25)),
        )

    @property
    def embedded_analytics(self) -> bool:
        """This process owns the warehouse: embedded mode, with a file, and no analytics worker to ask."""
        return self.embedded_projections and self.warehouse_path is not None and self.analytics_url is None

    def webhook_delivery(self) -> DeliveryOptions:
        """How this deployment's webhook deliverers behave (projections/webhooks/deliverer.py)."""
        return DeliveryOptions(
            secret_key=self.secret_key, allow_private=self.webhooks_allow_private, timeout_s=self.webhooks_timeout_s,
            concurrency=self.webhooks_concurrency, backoff_scale=self.webhooks_backoff_scale,
        )


def _flag(text: str | None, *, default: bool) -> bool:
    if text is None or not text.strip():
        return default
    return text.strip().lower() not in ("0", "false", "no", "off")


def _secret_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    # Embedded mode: one random key per data directory, so tokens survive restarts.
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
