"""Kafka distribution with real processes: scale-out over a consumer group, and faults.

Workers are the production CLI (`trafi relay run`, `trafi projections run … --source kafka`)
in processes of their own; the broker is Tansu (tests/kafka_broker.py). Faults: kill -9 of the
broker mid-stream and a restart on the same storage; kill -9 of a consumer mid-batch; kill -9 of
the relay mid-batch. Afterwards the read model must equal a clean build from the log: no event
lost, none applied twice (one-cent refunds make a double application visible in sums).
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from commands.bus import CommandBus
from projections.kafka.relay import RELAY_NAME
from projections.read_models.orders import OrderList
from projections.read_models.stock import StockLevels
from projections.testing import clean_build, table_rows
from tests.factories import seed_small_store
from tests.integration.test_kafka import REPO, kafka_config, worker_env
from tests.integration.test_projection_runtime import paid_order, refund_cents
from tests.kafka_slow_projection import SlowOrderList

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def start(args: list[str], env: dict, log_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "api.cli", *args], cwd=REPO, env=env,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


class Traffic(threading.Thread):
    """One-cent refunds on a few paid orders, until stopped."""

    def __init__(self, bus, shop, orders, pause_s: float):
        super().__init__(daemon=True)
        self.bus, self.shop, self.orders, self.pause_s = bus, shop, orders, pause_s
        self.halt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        rng = random.Random(5)
        while not self.halt.is_set():
            refund_cents(self.bus, self.shop, rng.choice(self.orders), 1)
            self.sent += 1
            time.sleep(self.pause_s)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def test_three_consumer_processes_over_twelve_partitions_build_what_one_runner_builds(pg, broker, tmp_path):
    app, views = pg
    bus = CommandBus(app)
    shop = seed_small_store(bus, stock=10_000)
    orders = [paid_order(bus, shop) for _ in range(12)]
    for order_id in orders:
        refund_cents(bus, shop, order_id, 2)
    config = kafka_config(broker)
    env = worker_env(app, broker)
    relay = start(["relay", "run"], env, tmp_path / "relay.log")
    members = [start(["projections", "run", "order_list", "stock_levels", "--source", "kafka"], env,
                     tmp_path / f"member-{i}.log") for i in range(3)]
    traffic = Traffic(bus, shop, orders, pause_s=0.01)
    try:
        traffic.start()
        # Members join (and the group rebalances) while events flow, until each has its share:
        # together every partition, none twice.
        shares: list = []

        def settled() -> bool:
            shares[:] = [_last_assignment((tmp_path / f"member-{i}.log").read_text()) for i in range(3)]
            return all(shares) and sorted(p for share in shares for p in share) == list(range(config.partitions))

        wait_for(settled, 60, "the group to give each member a share")
        time.sleep(2)
        traffic.stop()
        orders += [paid_order(bus, shop) for _ in range(3)]
        head = app.recorder.max_notification_id()
        wait_for(lambda: views.position(RELAY_NAME) >= head, 60, "the relay")
        expected = {p.name: clean_build(app, p, tmp_path) for p in (OrderList(), StockLevels())}
        wait_for(lambda: all(table_rows(views, p) == expected[p.name] for p in (OrderList(), StockLevels())),
                 90, "the read models built through Kafka to equal a clean build")
    finally:
        traffic.halt.set()
        stop(relay, *members)
    assert traffic.sent > 50
    assert all(shares), shares
    assert sorted(p for share in shares for p in share) == list(range(config.partitions)), shares


def _last_assignment(log: str) -> list[int]:
    found = re.findall(r": assigned partitions (\[[\d, ]*\])", log)
    return json.loads(found[-1]) if found else []


def test_kill_9_of_the_broker_a_consumer_and_the_relay_mid_batch_lose_nothing_and_apply_nothing_twice(
        pg, durable_broker, tmp_path):
    broker = durable_broker
    app, views = pg
    bus = CommandBus(app)
    shop = seed_small_store(bus, stock=10_000)
    orders = [paid_order(bus, shop) for _ in range(6)]
    env = {**worker_env(app, broker), "TRAFI_PROJECTIONS": "tests.kafka_slow_projection:SlowOrderList",
           # Tansu on (moto's) S3 needs longer than the default 20 ms to read a fetch from storage;
           # held to 20 ms, it answers every fetch empty.
           "TRAFI_KAFKA_FETCH_MAX_WAIT_MS": "500"}

    def relay_process():
        return start(["relay", "run", "--batch-size", "40", "--retry-s", "0.5"], env, tmp_path / "relay.log")

    def consumer_process(i: int):
        return start(["projections", "run", "slow_order_list", "--source", "kafka", "--batch-size", "40"], env,
                     tmp_path / f"consumer-{i}.log")

    relay, consumers = relay_process(), [consumer_process(0), consumer_process(1)]
    traffic = Traffic(bus, shop, orders, pause_s=0.005)
    try:
        traffic.start()
        time.sleep(6)
        broker.kill()  # mid-stream: the relay has batches in flight, consumers fetches
        time.sleep(2)
        broker.start()  # on the same storage, as a Kafka broker comes back with its disks
        time.sleep(3)
        kill_9(consumers[0])  # its batches are slow: it dies inside one
        consumers[0] = consumer_process(2)
        time.sleep(3)
        kill_9(relay)  # mid-batch: sent but not recorded, so sent again by its successor
        relay = relay_process()
        time.sleep(3)
        traffic.stop()
        head = app.recorder.max_notification_id()
        wait_for(lambda: views.position(RELAY_NAME) >= head, 90, "the relay to publish everything")
        expected = clean_build(app, SlowOrderList(), tmp_path)
        wait_for(lambda: table_rows(views, SlowOrderList()) == expected, 120,
                 "the Kafka-fed read model to equal a clean build")
    finally:
        traffic.halt.set()
        stop(relay, *consumers)
    assert traffic.sent > 200
