"""Configuration of the HTTP API, from the environment (the event store's own is commands/config.py).

TRAFI_SECRET_KEY          hex or text; derives every bearer token (API keys, sessions, reset links).
                          Every API process of a deployment must share it. Unset: a random key is
                          created once in TRAFI_DATA_DIR/secret.key (embedded mode).
TRAFI_DATA_DIR            where embedded mode keeps its files (default ./trafi-data)
TRAFI_REDIS_URL           e.g. redis://127.0.0.1:6379/0 — shared rate limits; unset: in-process buckets
TRAFI_RATE_STOREFRONT     "<per second>/<burst>" per publishable key and client address (default 20/60)
TRAFI_RATE_ADMIN          per secret key or admin user (default 50/100)
TRAFI_RATE_ANONYMOUS      per client address for requests without a valid credential (default 10/30)
TRAFI_CORS_ORIGINS        comma-separated origins allowed to call the API from a browser (default none)
TRAFI_MAX_BODY_BYTES      larger request bodies get 413 (default 1048576)
TRAFI_EMBEDDED_PROJECTIONS  1 (default): this process keeps the read models current; 0: workers do
TRAFI_READY_MAX_LAG       /readyz fails when a projection is more events behind than this (default 10000)
TRAFI_SMTP_HOST / _PORT   outgoing mail (password reset); unset: mails are written to the log
TRAFI_MAIL_FROM           sender address (default no-reply@trafi.local)
TRAFI_STOREFRONT_URL      base of links in e-mails (default http://localhost:3000)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from commands.config import EventStoreConfig


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
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    embedded_projections: bool = True
    ready_max_lag: int = 10_000
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "no-reply@trafi.local"
    storefront_url: str = "http://localhost:3000"

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
            cors_origins=tuple(o.strip() for o in env.get("TRAFI_CORS_ORIGINS", "").split(",") if o.strip()),
            max_body_bytes=int(env.get("TRAFI_MAX_BODY_BYTES", 1024 * 1024)),
            embedded_projections=env.get("TRAFI_EMBEDDED_PROJECTIONS", "1") not in ("0", "false", "no"),
            ready_max_lag=int(env.get("TRAFI_READY_MAX_LAG", 10_000)),
            smtp_host=env.get("TRAFI_SMTP_HOST") or None,
            smtp_port=int(env.get("TRAFI_SMTP_PORT", 25)),
            mail_from=env.get("TRAFI_MAIL_FROM", cls.mail_from),
            storefront_url=env.get("TRAFI_STOREFRONT_URL", cls.storefront_url).rstrip("/"),
        )


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
