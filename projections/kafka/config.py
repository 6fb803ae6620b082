"""Kafka settings, from the environment.

TRAFI_KAFKA_BOOTSTRAP     host:port[,host:port] of the brokers; unset: no Kafka (embedded and single-server modes)
TRAFI_KAFKA_TOPIC_PREFIX  names this deployment's topics: "<prefix>.events.v1" (default "trafi")
TRAFI_KAFKA_PARTITIONS    partitions of the events topic when the relay creates it (default 12)
TRAFI_KAFKA_REPLICATION   its replication factor (default 1; 3 on a real cluster)
TRAFI_KAFKA_POLL_INTERVAL_MS  a consumer that does not poll within this is dropped from its group (default 300000)
TRAFI_KAFKA_SESSION_TIMEOUT_MS  a consumer silent this long (killed) loses its partitions (default 10000)
TRAFI_KAFKA_FETCH_MAX_WAIT_MS  how long the broker may hold a fetch that has nothing new (default 20: new
                          events are visible within tens of milliseconds; raise it for a broker whose
                          storage cannot answer a fetch that fast, or it answers every fetch empty)
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str
    topic_prefix: str = "trafi"
    partitions: int = 12
    replication: int = 1
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 10_000
    fetch_max_wait_ms: int = 20

    @classmethod
    def from_env(cls, environ: dict | None = None) -> KafkaConfig | None:
        """None when no broker is configured."""
        env = os.environ if environ is None else environ
        bootstrap = env.get("TRAFI_KAFKA_BOOTSTRAP", "").strip()
        if not bootstrap:
            return None
        return cls(
            bootstrap=bootstrap,
            topic_prefix=env.get("TRAFI_KAFKA_TOPIC_PREFIX", cls.topic_prefix).strip() or cls.topic_prefix,
            partitions=int(env.get("TRAFI_KAFKA_PARTITIONS", cls.partitions)),
            replication=int(env.get("TRAFI_KAFKA_REPLICATION", cls.replication)),
            max_poll_interval_ms=int(env.get("TRAFI_KAFKA_POLL_INTERVAL_MS", cls.max_poll_interval_ms)),
            session_timeout_ms=int(env.get("TRAFI_KAFKA_SESSION_TIMEOUT_MS", cls.session_timeout_ms)),
            fetch_max_wait_ms=int(env.get("TRAFI_KAFKA_FETCH_MAX_WAIT_MS", cls.fetch_max_wait_ms)),
        )

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def events_topic(self) -> str:
        # Versioned like event topics: a change of the message format gets a new topic.
        return f"{self.topic_prefix}.events.v1"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.events.v1.dead-letter"

    def group_id(self, projection_name: str) -> str:
        return f"{self.topic_prefix}.projection.{projection_name}"
