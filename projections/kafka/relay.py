"""The relay: publishes every event, in log order, to the deployment's events topic.

It is a projection like any other — a pinned name, a tracking position, run by
ProjectionRunner — whose "read model" is the topic. `apply_batch` sends the
batch and waits until the broker has acknowledged every message (acks=all);
only then does the runner commit the new position. So:

* at-least-once: a crash (or a broker failure) after some sends but before the
  commit re-sends from the last committed position; consumers drop the copies
  by (aggregate id, version) — consumer.py;
* never out of order per aggregate: one aggregate → one key → one partition,
  one producer with one request in flight per broker, and a failed batch is
  re-sent from its first event, so an event's last copy always follows its
  predecessor's (the consumer relies on exactly that);
* two relays of one deployment take turns on the tracking row (runner.py):
  the second is a hot standby, not a second publisher.

The store id of each event comes from the aggregate → store table it keeps
(aggregate_stores.py), as the envelope requires.
"""

from __future__ import annotations

import logging
from typing import Sequence

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from domain.envelope import build_envelope
from projections import aggregate_stores
from projections.kafka.config import KafkaConfig
from projections.kafka.messages import to_message
from projections.kafka.topics import ensure_topics
from projections.projection import Projection
from projections.views import ViewTransaction

log = logging.getLogger("trafi.kafka.relay")

RELAY_NAME = "kafka_relay"
RELAY_STORES = "trafi_relay_aggregate_stores"
_KNOWN_STORES_MAX = 200_000  # aggregate → store entries kept in memory (the table has them all)


class KafkaRelay(Projection):
    name = RELAY_NAME
    tables = (RELAY_STORES,)
    failures_are_transient = True

    def __init__(self, config: KafkaConfig | None = None, *, ack_timeout_s: float = 10.0):
        self.config = config  # None: only for reading the relay's status
        self.ack_timeout_s = ack_timeout_s
        self._producer: KafkaProducer | None = None
        self._partitions = 0
        self._partition_of: dict[bytes, int] = {}
        self._known_stores: dict = {}

    @property
    def topics(self) -> None:
        return None  # every event

    def setup(self, tx: ViewTransaction) -> None:
        aggregate_stores.create_table(tx, RELAY_STORES)

    def rebuild_refusal(self, app, views) -> str | None:
        return ("a rebuild publishes the whole log to the topic again: consumers drop the copies, "
                "but every one of them reads the store's history once more")

    def apply(self, tx: ViewTransaction, event) -> None:
        raise TypeError("the relay works on notifications; it is applied through apply_batch")

    def apply_batch(self, tx: ViewTransaction, notifications: Sequence, mapper) -> None:
        if not notifications:
            return
        if len(self._known_stores) > _KNOWN_STORES_MAX:
            self._known_stores.clear()
        decoded: dict[int, object] = {}
        stores = aggregate_stores.stores_of(tx, RELAY_STORES, notifications, mapper, decoded, known=self._known_stores)
        producer = self._connected()
        topic = self.config.events_topic
        try:
            futures = []
            for notification in notifications:
                event = decoded.get(notification.id) or mapper.to_domain_event(notification)
                envelope = build_envelope(
                    position=notification.id, aggregate_id=notification.originator_id,
                    version=notification.originator_version, topic=notification.topic, event=event,
                    store_id=stores.get(notification.originator_id),
                )
                key, value, headers = to_message(notification, envelope)
                futures.append(producer.send(topic, key=key, value=value, headers=headers,
                                             partition=self._partition(key)))
            producer.flush(timeout=self.ack_timeout_s)
            for future in futures:
                if not future.succeeded():
                    raise future.exception or TimeoutError("the broker did not acknowledge the batch")
        except BaseException:
            # Whatever this producer still holds must not reach the broker after the retry
            # has re-sent it: a fresh producer re-sends the whole batch from its first event.
            self.close()
            raise

    def _connected(self) -> KafkaProducer:
        if self.config is None:
            raise RuntimeError("the relay needs a KafkaConfig to publish")
        if self._producer is None:
            ensure_topics(self.config)
            self._producer = KafkaProducer(
                bootstrap_servers=self.config.servers,
                allow_auto_create_topics=False,
                client_id=f"trafi-{RELAY_NAME}",
                acks="all",
                # One request in flight per broker: a retried request can never be overtaken.
                max_in_flight_requests_per_connection=1,
                # No broker-side idempotence: consumers already drop copies by (aggregate id,
                # version), and with it a broker that lost part of a write when it died (Tansu's
                # S3 store can keep the producer's sequence but not the batch) answers the retry
                # "duplicate" — which the producer takes as success, and the events are gone.
                # Without it the retry is appended again: a copy, never a hole.
                enable_idempotence=False,
                linger_ms=5,
                batch_size=1 << 20,
                max_request_size=16 << 20,
                max_block_ms=int(self.ack_timeout_s * 1000),
                request_timeout_ms=int(self.ack_timeout_s * 1000),
                delivery_timeout_ms=int(self.ack_timeout_s * 1000) + 5000,
            )
            partitions = self._producer.partitions_for(self.config.events_topic)
            self._partitions = len(partitions)
            self._partition_of.clear()
        return self._producer

    def _partition(self, key: bytes) -> int:
        # The same partition Kafka's default partitioner picks (murmur2 of the key), so any
        # other producer of this topic agrees; cached because an aggregate's id recurs.
        partition = self._partition_of.get(key)
        if partition is None:
            if len(self._partition_of) > _KNOWN_STORES_MAX:
                self._partition_of.clear()
            partition = self._partition_of[key] = (murmur2(key) & 0x7FFFFFFF) % self._partitions
        return partition

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # closing a producer whose broker is gone may complain; it is gone anyway
                log.debug("closing the relay's producer", exc_info=True)
