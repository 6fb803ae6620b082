"""Configuration of the write side, from the environment.

TRAFI_EVENT_STORE   sqlite (default, embedded) | postgres
TRAFI_SQLITE_PATH   file of the SQLite event store (default ./trafi-data/events.sqlite)
TRAFI_POSTGRES_DSN  e.g. postgresql://postgres@127.0.0.1:5432/trafi
TRAFI_POOL_SIZE     PostgreSQL connection pool size (default 10)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class EventStoreConfig:
    kind: str = "sqlite"
    sqlite_path: str = "trafi-data/events.sqlite"
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/trafi"
    pool_size: int = 10

    @classmethod
    def from_env(cls, environ: dict | None = None) -> EventStoreConfig:
        env = os.environ if environ is None else environ
        return cls(
            kind=env.get("TRAFI_EVENT_STORE", cls.kind),
            sqlite_path=env.get("TRAFI_SQLITE_PATH", cls.sqlite_path),
            postgres_dsn=env.get("TRAFI_POSTGRES_DSN", cls.postgres_dsn),
            pool_size=int(env.get("TRAFI_POOL_SIZE", cls.pool_size)),
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """Translate into the eventsourcing library's environment variables."""
        if self.kind == "sqlite":
            path = self.sqlite_path
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "commands.eventstore:TrafiSQLiteApplicationRecorder",
            }
        if self.kind == "postgres":
            url = urlparse(self.postgres_dsn)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": str(self.pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.pool_size),
                "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
                "APPLICATION_RECORDER_TOPIC": "commands.eventstore:TrafiPostgresApplicationRecorder",
            }
        raise ValueError(f"TRAFI_EVENT_STORE must be 'sqlite' or 'postgres', not {self.kind!r}")
