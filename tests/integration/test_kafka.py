"""Distribution over Kafka, against a real Kafka-protocol broker (Tansu, tests/kafka_broker.py).

The relay publishes the log; Kafka-fed projections consume it. Every read model
built through Kafka is compared row for row with a clean build from the log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from commands.bus import CommandBus
from domain.envelope import ENVELOPE_FIELDS, event_id
from projections.hash_chain import AuditChain
from projections.kafka import bookkeeping
from projections.kafka.config import KafkaConfig
from projections.kafka.consumer import KafkaProjectionConsumer
from projections.kafka.messages import STATE_HEADER, to_message
from projections.kafka.relay import RELAY_NAME, KafkaRelay
from projections.kafka.topics import ensure_topics
from projections.read_models.carts import CartView
from projections.read_models.orders import OrderList
from projections.read_models.stock import StockLevels
from projections.rebuild import rebuild
from projections.runner import FedFromKafka, ProjectionHalted, ProjectionRunner
from projections.testing import clean_build, table_rows
from projections.views import record_position
from tests.factories import seed_small_store
from tests.integration.test_projection_runtime import paid_order, refund_cents
from tests.kafka_broker import TansuBroker

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- fixtures

def kafka_config(broker: TansuBroker) -> KafkaConfig:
    # A killed consumer's partitions move after the session timeout: short, as TESTING.md advises.
    return KafkaConfig(bootstrap=broker.bootstrap, max_poll_interval_ms=3000, session_timeout_ms=6000)


def some_history(app) -> tuple:
    bus = CommandBus(app)
    shop = seed_small_store(bus)
    orders = [paid_order(bus, shop) for _ in range(4)]
    for order_id in orders:
        refund_cents(bus, shop, order_id, 3)  # a refund applied twice shows in the sums
    return bus, shop, orders


def relay_all(app, views, config: KafkaConfig) -> KafkaRelay:
    relay = KafkaRelay(config)
    runner = ProjectionRunner(app, views, relay, batch_size=2000)
    assert runner.catch_up().position == app.recorder.max_notification_id()
    return relay


def consume(app, views, projections, config: KafkaConfig, done) -> None:
    """One group member feeding these projections until `done()`, then it leaves the group."""
    consumer = KafkaProjectionConsumer(app, views, projections, config)
    try:
        consume_until([consumer], done)
    finally:
        consumer.close()


def consume_until(consumers, done, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the consumers did not catch up"
        for consumer in consumers:
            consumer.step(timeout_ms=100)


def applied_through(views, name: str, head: int):
    return lambda: views.position(name) >= head


def all_messages(config: KafkaConfig, topic: str | None = None, *, expect: int) -> list:
    topic = topic or config.events_topic
    consumer = KafkaConsumer(bootstrap_servers=config.servers, enable_auto_commit=False, fetch_max_wait_ms=20)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    messages, deadline = [], time.monotonic() + 30
    while len(messages) < expect and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200, max_records=5000).values():
            messages += batch
    time.sleep(0.3)  # and nothing more than expected
    for batch in consumer.poll(timeout_ms=200).values():
        messages += batch
    consumer.close()
    return messages


# --------------------------------------------------------------------------- the relay

def test_the_relay_publishes_every_event_in_log_order_as_an_envelope_keyed_by_aggregate(pg, broker):
    app, views = pg
    some_history(app)
    config = kafka_config(broker)
    relay_all(app, views, config).close()
    head = app.recorder.max_notification_id()
    stored = {n.id: n for n in app.recorder.select_notifications(start=1, limit=head + 1)}

    messages = all_messages(config, expect=head)
    assert sorted(json.loads(m.value)["position"] for m in messages) == list(range(1, head + 1))  # each once
    by_partition: dict[int, list] = {}
    for message in messages:
        by_partition.setdefault(message.partition, []).append(message)
    assert len(by_partition) > 1  # keys spread the aggregates over the partitions
    partition_of: dict[str, int] = {}
    for partition, in_order in by_partition.items():
        positions = [json.loads(m.value)["position"] for m in sorted(in_order, key=lambda m: m.offset)]
        assert positions == sorted(positions)  # log order within a partition
        for message in in_order:
            envelope = json.loads(message.value)
            notification = stored[envelope["position"]]
            assert list(envelope) == list(ENVELOPE_FIELDS)
            assert message.key == envelope["aggregate_id"].encode() == str(notification.originator_id).encode()
            assert envelope["version"] == notification.originator_version
            assert envelope["type"] == notification.topic
            assert envelope["event_id"] == str(event_id(notification.originator_id, notification.originator_version))
            assert envelope["store_id"] is not None  # every event of the seeded store carries its store
            assert dict(message.headers)[STATE_HEADER] == notification.state
            # one aggregate, one partition
            assert partition_of.setdefault(envelope["aggregate_id"], partition) == partition
    assert views.position(RELAY_NAME) == head


def test_the_relay_advances_only_after_the_broker_acknowledged(pg, durable_broker):
    app, views = pg
    bus, shop, orders = some_history(app)
    config = kafka_config(durable_broker)
    relay = relay_all(app, views, config)
    published = app.recorder.max_notification_id()
    refund_cents(bus, shop, orders[0], 5)

    durable_broker.kill()
    relay.ack_timeout_s = 2.0
    relay.close()  # a fresh connection attempt, as a restarted relay would make
    runner = ProjectionRunner(app, views, relay, batch_size=2000)
    with pytest.raises(ProjectionHalted):
        runner.catch_up()
    assert views.position(RELAY_NAME) == published  # nothing acknowledged, nothing recorded
    assert views.status(RELAY_NAME)[1]  # and the reason is there for `projections status`

    durable_broker.start()  # same storage: what was acknowledged before is still there
    relay.ack_timeout_s = 10.0
    head = app.recorder.max_notification_id()
    assert runner.catch_up().position == head
    assert views.status(RELAY_NAME) == (head, None)
    positions = sorted(json.loads(m.value)["position"] for m in all_messages(config, expect=head))
    assert positions[:published] == list(range(1, published + 1)) and set(positions) == set(range(1, head + 1))
    relay.close()


# --------------------------------------------------------------------------- consumers

def test_projections_fed_from_kafka_equal_a_clean_build_from_the_log(pg, broker, tmp_path):
    app, views = pg
    some_history(app)
    config = kafka_config(broker)
    relay_all(app, views, config).close()
    head = app.recorder.max_notification_id()
    projections = [OrderList(), StockLevels(), CartView()]
    # one member feeds all three
    consume(app, views, projections, config, lambda: all(views.position(p.name) >= head for p in projections))
    for projection in projections:
        assert table_rows(views, projection) == clean_build(app, projection, tmp_path), projection.name
    with views.read() as tx:
        assert bookkeeping.source_counters(tx, "order_list") == {
            "handoff_position": 0, "duplicates": 0, "held_back": 0, "dead_letters": 0}


def test_copies_from_a_relay_that_publishes_again_are_dropped_by_aggregate_and_version(pg, broker, tmp_path):
    app, views = pg
    some_history(app)
    config = kafka_config(broker)
    relay_all(app, views, config).close()
    head = app.recorder.max_notification_id()
    with views.transaction() as tx:  # the relay forgets it published anything: at-least-once, twice
        record_position(tx, RELAY_NAME, 0)
    relay_all(app, views, config).close()
    assert len(all_messages(config, expect=2 * head)) == 2 * head

    consume(app, views, OrderList(), config, lambda: _counters(views, "order_list")["duplicates"] >= head)
    assert _counters(views, "order_list")["duplicates"] == head
    assert table_rows(views, OrderList()) == clean_build(app, OrderList(), tmp_path)


def _counters(views, name: str) -> dict:
    with views.read() as tx:
        return bookkeeping.source_counters(tx, name)


def test_an_event_that_overtakes_its_predecessor_waits_for_the_relay_to_send_both_again(pg, broker, tmp_path):
    app, views = pg
    _, _, orders = some_history(app)
    config = kafka_config(broker)
    ensure_topics(config)
    # What a relay whose batch failed half-way leaves on the topic: a later event of an order
    # alone, then — re-sent from the missing one — both in order. (Produced as that relay would.)
    log = app.recorder.select_notifications(start=1, limit=10_000)
    stream = [n for n in log if n.originator_id == orders[0]]
    last, earlier = stream[-1], stream[-2]
    producer = KafkaProducer(bootstrap_servers=config.servers, acks="all")
    for notification in log:
        for sent in ((last, earlier) if notification == earlier else (notification,)):
            key, value, headers = to_message(sent, _envelope(sent, app.mapper))
            producer.send(config.events_topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    head = app.recorder.max_notification_id()

    consume(app, views, OrderList(), config, applied_through(views, "order_list", head))
    assert _counters(views, "order_list")["held_back"] == 1  # `last` on its own, before `earlier`
    assert _counters(views, "order_list")["duplicates"] == 0
    assert table_rows(views, OrderList()) == clean_build(app, OrderList(), tmp_path)


def _envelope(notification, mapper) -> dict:
    from domain.envelope import build_envelope

    return build_envelope(position=notification.id, aggregate_id=notification.originator_id,
                          version=notification.originator_version, topic=notification.topic,
                          event=mapper.to_domain_event(notification), store_id=None)


def test_bad_messages_are_dead_lettered_counted_and_never_stop_the_consumer(pg, broker, tmp_path):
    app, views = pg
    some_history(app)
    config = kafka_config(broker)
    relay = KafkaRelay(config)
    runner = ProjectionRunner(app, views, relay, batch_size=2000)
    runner.catch_up()  # creates the topics
    sample = app.recorder.select_notifications(start=1, limit=1)[0]
    key, value, headers = to_message(sample, _envelope(sample, app.mapper))
    unknown = json.loads(value) | {"type": "trafi.cart.teleported.v1"}
    bad = [
        (key, b"\x00\x01 not json", headers, "not JSON"),
        (key, b'{"hello": "world"}', headers, "not an event envelope"),
        (key, json.dumps(unknown).encode(), headers, "unknown event type"),
        (key, value, [], f"no {STATE_HEADER} header"),
        (b"someone-else", value, headers, "key is not the envelope's aggregate id"),
        (key, None, headers, "no value"),
    ]
    producer = KafkaProducer(bootstrap_servers=config.servers, acks="all")
    for message_key, message_value, message_headers, _ in bad:
        producer.send(config.events_topic, key=message_key, value=message_value, headers=message_headers).get(10)
    producer.close()
    some_history(app)  # good events after the bad ones
    runner.catch_up()
    relay.close()
    head = app.recorder.max_notification_id()

    consume(app, views, OrderList(), config, applied_through(views, "order_list", head))
    assert table_rows(views, OrderList()) == clean_build(app, OrderList(), tmp_path)
    assert _counters(views, "order_list")["dead_letters"] == len(bad)
    with views.read() as tx:
        reasons = [r for (r,) in tx.execute(f"SELECT reason FROM {bookkeeping.DEAD_LETTERS}").fetchall()]
    assert len(reasons) == len(bad)
    for *_, expected in bad:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    parked = all_messages(config, config.dead_letter_topic, expect=len(bad))
    assert len(parked) == len(bad)
    for message in parked:
        headers = dict(message.headers)
        assert headers["trafi-dead-letter-consumer"] == b"order_list"
        assert headers["trafi-dead-letter-source"].startswith(config.events_topic.encode() + b":")
        assert headers["trafi-dead-letter-reason"]


def test_a_projection_switched_from_the_log_to_kafka_applies_nothing_twice_and_back_by_a_rebuild(pg, broker, tmp_path):
    app, views = pg
    bus, shop, orders = some_history(app)
    ProjectionRunner(app, views, OrderList()).catch_up()  # the log ran it so far
    handed_off = views.position("order_list")
    refund_cents(bus, shop, orders[1], 4)
    config = kafka_config(broker)
    relay_all(app, views, config).close()
    head = app.recorder.max_notification_id()

    consumer = KafkaProjectionConsumer(app, views, OrderList(), config)
    try:
        assert consumer.handoff == handed_off
        consume_until([consumer], applied_through(views, "order_list", head))
        assert table_rows(views, OrderList()) == clean_build(app, OrderList(), tmp_path)
        refund_cents(bus, shop, orders[3], 1)
        with pytest.raises(FedFromKafka):  # never both sources at once
            ProjectionRunner(app, views, OrderList()).catch_up()
        assert views.position("order_list") == head
    finally:
        consumer.close()

    rebuild(app, views, OrderList())  # back to the log
    refund_cents(bus, shop, orders[2], 2)
    ProjectionRunner(app, views, OrderList()).catch_up()
    assert table_rows(views, OrderList()) == clean_build(app, OrderList(), tmp_path)


def test_a_projection_that_needs_the_whole_log_order_refuses_kafka(pg, broker):
    app, views = pg
    with pytest.raises(ValueError, match="database log"):
        KafkaProjectionConsumer(app, views, AuditChain(), kafka_config(broker))


# --------------------------------------------------------------------------- processes

def worker_env(app, broker: TansuBroker) -> dict:
    return {
        **os.environ, "PYTHONPATH": str(REPO), "TRAFI_EVENT_STORE": "postgres",
        "TRAFI_POSTGRES_DSN": app.config.postgres_dsn, "TRAFI_POOL_SIZE": "4",
        "TRAFI_KAFKA_BOOTSTRAP": broker.bootstrap, "TRAFI_KAFKA_POLL_INTERVAL_MS": "3000",
        "TRAFI_KAFKA_SESSION_TIMEOUT_MS": "6000", "TRAFI_LOG_LEVEL": "INFO",
    }


def test_relay_lag_is_in_projections_status(pg, broker):
    app, views = pg
    some_history(app)
    config = kafka_config(broker)
    relay = KafkaRelay(config)
    ProjectionRunner(app, views, relay, batch_size=10).catch_up()
    relay.close()
    head = app.recorder.max_notification_id()
    with views.transaction() as tx:
        record_position(tx, RELAY_NAME, head - 7)
    out = subprocess.run([sys.executable, "-m", "api.cli", "projections", "status", "--json"], cwd=REPO,
                         env=worker_env(app, broker), capture_output=True, text=True, timeout=60)
    rows = {row["name"]: row for row in map(json.loads, out.stdout.splitlines())}
    assert rows[RELAY_NAME]["lag_events"] == 7 and rows[RELAY_NAME]["state"] == "behind"
    assert rows["order_list"]["source"] == "log"
