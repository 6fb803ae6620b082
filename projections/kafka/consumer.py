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
from projections.kafka.topics import ensure_topics
from projections.projection import Projection
from projections.views import ViewStore, claim_position, record_position

log = logging.getLogger("trafi.kafka.consumer")


class KafkaProjectionConsumer:
    """One consumer-group member that feeds one or more projections.

    The projections of one process share a member (and so a group, named after
    them all): each batch is read and decoded once, then applied to each of them
    in one transaction, each projection with its own offsets, versions and
    counters. Every process of a group runs the same list of projections.
    """

    def __init__(
        self,
        app: TrafiApplication,
        views: ViewStore,
        projections: Projection | Sequence[Projection],
        config: KafkaConfig,
        *,
        batch_size: int = 500,
        retry_halted_s: float = 5.0,
    ):
        projections = [projections] if isinstance(projections, Projection) else list(projections)
        if not projections:
            raise ValueError("a Kafka consumer needs at least one projection")
        for projection in projections:
            if not projection.name:
                raise ValueError(f"{type(projection).__name__} needs a pinned name")
            if projection.needs_log_order:
                raise ValueError(f"projection {projection.name} depends on the order of the whole log, which the "
                                 "partitions of a topic do not keep: run it from the database log")
        self.app = app
        self.views = views
        self.feeds = [_Feed(p) for p in projections]
        self.config = config
        self.batch_size = batch_size
        self.retry_halted_s = retry_halted_s
        self.topic = config.events_topic
        self._halted_until = 0.0
        self._from_beginning: set[int] = set()  # partitions this member has rewound to their start
        self._stop = threading.Event()
        with views.schema_transaction() as tx:
            for feed in self.feeds:
                feed.projection.setup(tx)
                feed.handoff = bookkeeping.begin_source(tx, feed.name)
        self._dead_letters: KafkaProducer | None = None
        # A member that starts before the relay must not let the broker create the topic
        # with its own defaults (partitions, retention): it creates it as the relay would.
        ensure_topics(config)
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.servers,
            allow_auto_create_topics=False,
            group_id=config.group_id("+".join(sorted(f.name for f in self.feeds))),
            client_id=f"trafi-{self.name}",
            enable_auto_commit=False,  # the view database holds the offsets that count
            auto_offset_reset="earliest",
            max_poll_interval_ms=config.max_poll_interval_ms,
            session_timeout_ms=config.session_timeout_ms,
            # Frequent heartbeats: a group (re)forms within a few of them, so a new or
            # restarted member gets its partitions in seconds, not tens of seconds.
            heartbeat_interval_ms=min(1000, config.session_timeout_ms // 3),
            fetch_max_wait_ms=config.fetch_max_wait_ms,  # commit → visible through Kafka stays well under a second
            max_partition_fetch_bytes=8 << 20,
        )
        self.consumer.subscribe([self.topic], listener=_SeekToStoredOffsets(self))

    @property
    def name(self) -> str:
        return "+".join(f.name for f in self.feeds)

    @property
    def handoff(self) -> int:
        return self.feeds[0].handoff

    def run(self) -> None:
        """Until stop(): `trafi projections run NAME… --source kafka`."""
        try:
            while not self._stop.is_set():
                self.step(timeout_ms=500)
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

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
        except _Rehandoff:
            self._hand_off_again()
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
        decoded, bad = self._decode(batch)  # once, whatever the number of projections
        applied, consumed = 0, {}
        with self.views.transaction() as tx:
            rewind: dict[int, int | None] = {}
            plans = []
            for feed in self.feeds:
                handoff = bookkeeping.handoff_of(tx, feed.name)
                if handoff is None:
                    raise _Rehandoff()
                feed.handoff = handoff  # another member may have re-handed off after a rebuild
                stored = bookkeeping.lock_offsets(tx, feed.name, self.topic, [tp.partition for tp in batch])
                starts = self._starts(batch, stored, rewind)
                plans.append((feed, starts))
            if rewind:
                # The whole batch is dropped, so every one of its partitions is read again —
                # not only those that need it — or their fetch positions would have moved on.
                for tp, messages in batch.items():
                    rewind.setdefault(tp.partition, messages[0].offset)
                raise _Rewind(rewind)
            for record, reason in bad:
                if any(record.offset >= starts[record.partition] for _, starts in plans):
                    self._park(record, reason)
            consumed = {tp.partition: messages[-1].offset + 1 for tp, messages in batch.items() if messages}
            for feed, starts in plans:
                applied += self._apply_to(tx, feed, starts, decoded, bad, consumed)
            self._from_beginning.difference_update(consumed)
        return applied, consumed

    def _starts(self, batch: dict[TopicPartition, list], stored: dict[int, int], rewind: dict) -> dict[int, int]:
        """Per partition, the first offset this projection has not applied; notes where to read again."""
        starts = {}
        for tp, messages in batch.items():
            start = stored.get(tp.partition, -1)
            if start < 0 and tp.partition not in self._from_beginning:
                rewind[tp.partition] = None  # the offsets were reset (a rebuild): start over
            elif start > messages[0].offset or start < 0:
                starts[tp.partition] = max(start, 0)  # what is below was applied (by another member, maybe)
            elif start < messages[0].offset:
                # Something between is unapplied: read it first (None, the beginning, wins).
                if rewind.get(tp.partition, start) is not None:
                    rewind[tp.partition] = min(rewind.get(tp.partition, start), start)
            else:
                starts[tp.partition] = start
        return starts

    def _apply_to(self, tx, feed: _Feed, starts: dict[int, int], decoded: list, bad: list,
                  consumed: dict[int, int]) -> int:
        counters = {"duplicates": 0, "held_back": 0, "dead_letters": 0}
        mine = [(n, e) for partition, offset, n, e in decoded if offset >= starts[partition]]
        for record, reason in bad:
            if record.offset >= starts[record.partition]:
                bookkeeping.record_dead_letter(tx, feed.name, record.topic, record.partition, record.offset, reason)
                counters["dead_letters"] += 1
        fresh, versions = self._new_events(tx, feed, mine, counters)
        handled = [n for n, _ in fresh if feed.handled is None or n.topic in feed.handled]
        feed.projection.apply_batch(tx, handled, _Decoded(self.app.mapper, fresh))
        bookkeeping.store_versions(tx, feed.name, versions)
        bookkeeping.store_offsets(tx, feed.name, self.topic, {
            partition: next_offset for partition, next_offset in consumed.items() if next_offset > starts[partition]})
        bookkeeping.count(tx, feed.name, **counters)
        if fresh:
            bookkeeping.advance_position(tx, feed.name, max(n.id for n, _ in fresh))
        if counters["duplicates"] or counters["held_back"]:
            log.info("%s: dropped %d copies, held back %d early events", feed.name,
                     counters["duplicates"], counters["held_back"])
        return len(handled)

    def _decode(self, batch: dict[TopicPartition, list]) -> tuple[list, list]:
        """[(partition, offset, notification, event)] in partition order, and [(record, reason)] for bad input."""
        decoded, bad = [], []
        for tp, messages in batch.items():
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
                decoded.append((tp.partition, message.offset, notification, event))
        return decoded, bad

    @staticmethod
    def _new_events(tx, feed: _Feed, decoded: list, counters: dict) -> tuple[list, dict[str, int]]:
        """The events to apply, [(notification, event)], and the aggregates' new last versions."""
        versions = bookkeeping.last_versions(tx, feed.name, sorted({str(n.originator_id) for n, _ in decoded}))
        changed: dict[str, int] = {}
        fresh = []
        for notification, event in decoded:
            aggregate, version = str(notification.originator_id), notification.originator_version
            last = versions.get(aggregate, 0)
            if version <= last:
                counters["duplicates"] += 1
                continue
            if version > last + 1:
                counters["held_back"] += 1  # its predecessor is still to come: the relay re-sends both
                continue
            versions[aggregate] = changed[aggregate] = version
            if notification.id > feed.handoff:  # at or before it: the log runner applied it before the switch
                fresh.append((notification, event))
        return fresh, changed

    # -- bad input ----------------------------------------------------------------------
    def _park(self, record, reason: str) -> None:
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

    # -- failures and rebalances --------------------------------------------------------
    def _hand_off_again(self) -> None:
        """A projection was rebuilt from the log (rebuild.py forgot its Kafka bookkeeping):
        read the topic again from the start; each projection skips what it has."""
        with self.views.transaction() as tx:
            for feed in self.feeds:
                feed.handoff = bookkeeping.begin_source(tx, feed.name)
        log.warning("%s: a projection was rebuilt from the database log; reading the topic again from the start",
                    self.name)
        self._seek({tp.partition: None for tp in self.consumer.assignment()})

    def _halt(self, batch: dict[TopicPartition, list], error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        log.error("projections %s (from Kafka) halted: %s", self.name, reason)
        try:
            with self.views.transaction() as tx:
                for feed in self.feeds:
                    record_position(tx, feed.name, claim_position(tx, feed.name), reason)
        except Exception:
            log.exception("could not record the halt of %s", self.name)
        self._halted_until = time.monotonic() + self.retry_halted_s
        self._seek_to_stored(list(batch))

    def _seek_to_stored(self, partitions: Iterable[TopicPartition]) -> None:
        """Where the projection furthest behind stands (the others skip what they have)."""
        with self.views.read() as tx:
            stored = [bookkeeping.stored_offsets(tx, feed.name, self.topic) for feed in self.feeds]
        offsets: dict[int, int | None] = {}
        for tp in partitions:
            starts = [s.get(tp.partition, -1) for s in stored]
            offsets[tp.partition] = None if min(starts) < 0 else min(starts)
        self._seek(offsets)

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


class _Rehandoff(Exception):
    pass


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


class _Feed:
    """One projection fed by the consumer, and what the consumer keeps for it."""

    def __init__(self, projection: Projection):
        self.projection = projection
        self.name = projection.name
        topics = projection.topics
        self.handled = frozenset(topics) if topics else None  # None: every event
        self.handoff = 0
