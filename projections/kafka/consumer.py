"""Any projection, fed from the events topic by a consumer group instead of the database log.

    trafi projections run order_list --source kafka      (one process per share of the partitions)

Every process running a projection from Kafka joins the group
"<prefix>.projection.<name>"; Kafka spreads the partitions over them and moves
them when one comes or goes. Within a partition, messages are applied in order.

One batch is one view transaction, which

1. locks the stored offsets of the batch's partitions (bookkeeping.py) and drops
   any message below them — another member applied those before a rebalance
   reached this one; if the batch starts *after* the stored offset, this member
   is not where the database says, so it seeks back and reads again;
2. turns each message into the stored event it carries (messages.py); one that
   is not a Trafi event is dead-lettered: logged, counted, sent to the
   dead-letter topic, and skipped — it never stops the consumer;
3. drops copies by (aggregate id, version) and holds back an event that arrives
   before its predecessor (see bookkeeping.py);
4. applies the rest through the projection's own `apply_batch` — the same code
   the log runner calls, handed the same domain events;
5. stores the next offsets, the versions and the counters.

So a crash anywhere (kill -9 mid-batch) loses the whole batch or none of it,
and a partition that moves mid-batch is never applied twice.

A handler that raises is a bug in the projection, not bad input: the batch rolls
back, the error is recorded as the projection's last error (`projections status`
shows it halted), and the batch is tried again every `retry_halted_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable, Sequence

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from commands.application import TrafiApplication
from projections.kafka import bookkeeping
from projections.kafka.config import KafkaConfig
from projections.kafka.messages import BadMessage, from_message
from projections.projection import Projection
from projections.views import ViewStore, claim_position, record_position

log = logging.getLogger("trafi.kafka.consumer")


class KafkaProjectionConsumer:
    def __init__(
        self,
        app: TrafiApplication,
        views: ViewStore,
        projection: Projection,
        config: KafkaConfig,
        *,
        batch_size: int = 500,
        retry_halted_s: float = 5.0,
    ):
        if not projection.name:
            raise ValueError(f"{type(projection).__name__} needs a pinned name")
        self.app = app
        self.views = views
        self.projection = projection
        self.config = config
        self.batch_size = batch_size
        self.retry_halted_s = retry_halted_s
        self.topic = config.events_topic
        topics = projection.topics
        self._handled = frozenset(topics) if topics else None  # None: every event
        self._halted_until = 0.0
        self._from_beginning: set[int] = set()  # partitions this member has rewound to their start
        with views.schema_transaction() as tx:
            projection.setup(tx)
            self.handoff = bookkeeping.begin_source(tx, self.name)
        self._dead_letters: KafkaProducer | None = None
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.servers,
            group_id=config.group_id(self.name),
            client_id=f"trafi-{self.name}",
            enable_auto_commit=False,  # the view database holds the offsets that count
            auto_offset_reset="earliest",
            max_poll_interval_ms=config.max_poll_interval_ms,
            session_timeout_ms=config.session_timeout_ms,
            # Frequent heartbeats: a group (re)forms within a few of them, so a new or
            # restarted member gets its partitions in seconds, not tens of seconds.
            heartbeat_interval_ms=min(1000, config.session_timeout_ms // 3),
            fetch_max_wait_ms=20,  # commit → visible through Kafka stays well under a second
            max_partition_fetch_bytes=8 << 20,
        )
        self.consumer.subscribe([self.topic], listener=_SeekToStoredOffsets(self))

    @property
    def name(self) -> str:
        return self.projection.name

    # -- the loop ----------------------------------------------------------------------
    def step(self, timeout_ms: int = 100) -> int:
        """Poll once and apply what came; return the number of events applied."""
        if self._halted_until > time.monotonic():
            self.consumer.poll(timeout_ms=0, max_records=1, update_offsets=False)  # stay in the group
            time.sleep(min(timeout_ms / 1000, self._halted_until - time.monotonic()))
            return 0
        batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.batch_size)
        if not batch:
            return 0
        try:
            applied, next_offsets = self._apply(batch)
        except _Rewind as rewind:
            self._seek(rewind.offsets)
            return 0
        except Exception as error:
            self._halt(batch, error)
            return 0
        self._commit_to_broker(next_offsets)
        return applied

    def close(self) -> None:
        try:
            self.consumer.close()  # leaves the group now: its partitions move without waiting for a timeout
        finally:
            if self._dead_letters is not None:
                self._dead_letters.close(timeout=5)
                self._dead_letters = None

    # -- one batch, one transaction -----------------------------------------------------
    def _apply(self, batch: dict[TopicPartition, list]) -> tuple[int, dict[int, int]]:
        counters = {"duplicates": 0, "held_back": 0, "dead_letters": 0}
        with self.views.transaction() as tx:
            stored = bookkeeping.lock_offsets(tx, self.name, self.topic, [tp.partition for tp in batch])
            records = self._unapplied(batch, stored)
            decoded, bad = self._decode(records)
            for record, reason in bad:
                self._dead_letter(tx, record, reason)
            counters["dead_letters"] = len(bad)
            fresh, versions = self._new_events(tx, decoded, counters)
            handled = [n for n, _ in fresh if self._handled is None or n.topic in self._handled]
            self.projection.apply_batch(tx, handled, _Decoded(self.app.mapper, fresh))
            bookkeeping.store_versions(tx, self.name, versions)
            next_offsets = {p: recs[-1].offset + 1 for p, recs in records.items() if recs}
            bookkeeping.store_offsets(tx, self.name, self.topic, next_offsets)
            bookkeeping.count(tx, self.name, **counters)
            if fresh:
                bookkeeping.advance_position(tx, self.name, max(n.id for n, _ in fresh))
        if counters["duplicates"] or counters["held_back"]:
            log.info("%s: dropped %d copies, held back %d early events", self.name,
                     counters["duplicates"], counters["held_back"])
        return len(handled), next_offsets

    def _unapplied(self, batch: dict[TopicPartition, list], stored: dict[int, int]) -> dict[int, list]:
        """Per partition, the batch's messages at or after the stored offset."""
        records: dict[int, list] = {}
        rewind: dict[int, int | None] = {}
        for tp, messages in batch.items():
            start = stored.get(tp.partition, -1)
            if start < 0 and tp.partition not in self._from_beginning:
                rewind[tp.partition] = None  # the offsets were reset (a rebuild): start over
                continue
            if start >= 0:
                messages = [m for m in messages if m.offset >= start]
                if messages and messages[0].offset > start:
                    rewind[tp.partition] = start  # something between is unapplied: read it first
                    continue
            self._from_beginning.discard(tp.partition)
            records[tp.partition] = messages
        if rewind:
            raise _Rewind(rewind)
        return records

    def _decode(self, records: dict[int, list]) -> tuple[list, list]:
        """[(partition, notification, event)] in partition order, and [(record, reason)] for bad input."""
        decoded, bad = [], []
        for partition, messages in records.items():
            for message in messages:
                try:
                    notification = from_message(message.key, message.value, message.headers)
                    event = self.app.mapper.to_domain_event(notification)
                except BadMessage as error:
                    bad.append((message, error.reason))
                    continue
                except Exception as error:  # the state does not decode into the event it names
                    bad.append((message, f"the event does not decode: {type(error).__name__}: {error}"))
                    continue
                decoded.append((partition, notification, event))
        return decoded, bad

    def _new_events(self, tx, decoded: list, counters: dict) -> tuple[list, dict[str, int]]:
        """The events to apply, [(notification, event)], and the aggregates' new last versions."""
        versions = bookkeeping.last_versions(tx, self.name, sorted({str(n.originator_id) for _, n, _ in decoded}))
        changed: dict[str, int] = {}
        fresh = []
        for _, notification, event in decoded:
            aggregate, version = str(notification.originator_id), notification.originator_version
            last = versions.get(aggregate, 0)
            if version <= last:
                counters["duplicates"] += 1
                continue
            if version > last + 1:
                counters["held_back"] += 1  # its predecessor is still to come: the relay re-sends both
                continue
            versions[aggregate] = changed[aggregate] = version
            if notification.id > self.handoff:  # at or before it: the log runner applied it before the switch
                fresh.append((notification, event))
        return fresh, changed

    # -- bad input ----------------------------------------------------------------------
    def _dead_letter(self, tx, record, reason: str) -> None:
        log.warning("%s: dead-lettered %s[%d]@%d: %s", self.name, record.topic, record.partition, record.offset, reason)
        headers = [*(record.headers or ()),
                   ("trafi-dead-letter-reason", reason.encode()),
                   ("trafi-dead-letter-source", f"{record.topic}:{record.partition}:{record.offset}".encode()),
                   ("trafi-dead-letter-consumer", self.name.encode())]
        if self._dead_letters is None:
            self._dead_letters = KafkaProducer(bootstrap_servers=self.config.servers, acks="all",
                                               client_id=f"trafi-{self.name}-dead-letters")
        # Acknowledged before the offset moves past it: a dead letter is never lost either.
        self._dead_letters.send(self.config.dead_letter_topic, key=record.key, value=record.value,
                                headers=headers).get(timeout=30)
        bookkeeping.record_dead_letter(tx, self.name, record.topic, record.partition, record.offset, reason)

    # -- failures and rebalances --------------------------------------------------------
    def _halt(self, batch: dict[TopicPartition, list], error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        log.error("projection %s (from Kafka) halted: %s", self.name, reason)
        try:
            with self.views.transaction() as tx:
                record_position(tx, self.name, claim_position(tx, self.name), reason)
        except Exception:
            log.exception("could not record the halt of %s", self.name)
        self._halted_until = time.monotonic() + self.retry_halted_s
        self._seek_to_stored([tp for tp in batch])

    def _seek_to_stored(self, partitions: Iterable[TopicPartition]) -> None:
        with self.views.read() as tx:
            stored = bookkeeping.stored_offsets(tx, self.name, self.topic)
        self._seek({tp.partition: (stored[tp.partition] if stored.get(tp.partition, -1) >= 0 else None)
                    for tp in partitions})

    def _seek(self, offsets: dict[int, int | None]) -> None:
        """Move the fetch position of these partitions: to an offset, or (None) to their beginning."""
        assigned = {tp.partition: tp for tp in self.consumer.assignment()}
        for partition, offset in offsets.items():
            tp = assigned.get(partition)
            if tp is None:
                continue  # moved to another member meanwhile
            if offset is None:
                self.consumer.seek_to_beginning(tp)
                self._from_beginning.add(partition)
            else:
                self.consumer.seek(tp, offset)

    def _commit_to_broker(self, next_offsets: dict[int, int]) -> None:
        # Informational only (kafka-consumer-groups shows the lag); the view database decides.
        if not next_offsets:
            return
        try:
            self.consumer.commit_async({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                                        for p, o in next_offsets.items()})
        except Exception as error:
            log.debug("could not commit offsets to the broker: %s", error)


class _Rewind(Exception):
    def __init__(self, offsets: dict[int, int | None]):
        super().__init__(f"rewind {offsets}")
        self.offsets = offsets


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    """On every assignment, start each partition where the view database says."""

    def __init__(self, owner: KafkaProjectionConsumer):
        self.owner = owner

    def on_partitions_revoked(self, revoked) -> None:
        pass  # batches are applied inside poll's caller, never across a rebalance: nothing in flight

    def on_partitions_assigned(self, assigned) -> None:
        if assigned:
            log.info("%s: assigned partitions %s", self.owner.name, sorted(tp.partition for tp in assigned))
            self.owner._seek_to_stored(assigned)


class _Decoded:
    """The application's mapper, answering from the events this batch already decoded."""

    def __init__(self, mapper, events: list[tuple]):
        self._mapper = mapper
        self._events = {notification.id: event for notification, event in events}

    def to_domain_event(self, notification):
        event = self._events.get(notification.id)
        return event if event is not None else self._mapper.to_domain_event(notification)

    def __getattr__(self, name):
        return getattr(self._mapper, name)


class KafkaProjectionWorker:
    """Several Kafka-fed projections in one process: `trafi projections run A B --source kafka`."""

    def __init__(self, consumers: Sequence[KafkaProjectionConsumer]):
        self.consumers = list(consumers)
        self._stop = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                for consumer in self.consumers:
                    consumer.step(timeout_ms=50 if len(self.consumers) > 1 else 200)
        finally:
            for consumer in self.consumers:
                consumer.close()

    def stop(self) -> None:
        self._stop.set()
