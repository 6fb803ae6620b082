"""Creating a deployment's topics (idempotent): the relay does it before its first publish."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from projections.kafka.config import KafkaConfig

log = logging.getLogger("trafi.kafka")

# The events topic is the log's copy: nothing may age out of it, or a consumer starting from
# the beginning (a new projection, a new group) would find holes. Dead letters are kept a month.
EVENTS_TOPIC_CONFIG = {"retention.ms": "-1", "cleanup.policy": "delete"}
DEAD_LETTER_TOPIC_CONFIG = {"retention.ms": str(30 * 24 * 3600 * 1000)}


def ensure_topics(config: KafkaConfig) -> None:
    admin = KafkaAdminClient(bootstrap_servers=config.servers, client_id="trafi-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(config.events_topic, config.partitions, config.replication, topic_configs=EVENTS_TOPIC_CONFIG),
            NewTopic(config.dead_letter_topic, 1, config.replication, topic_configs=DEAD_LETTER_TOPIC_CONFIG),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
                log.info("created topics %s", ", ".join(t.name for t in missing))
            except TopicAlreadyExistsError:
                pass  # another relay (or an operator) created them meanwhile
    finally:
        admin.close()
