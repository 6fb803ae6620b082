"""Exactly-once across crashes: kill -9 a projection worker mid-batch, again and again, under traffic."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from commands.orders import RefundOrder
from projections.read_models.orders import OrderList
from projections.testing import clean_build, table_rows
from projections.views import ViewStore
from tests.integration.test_projection_runtime import paid_order

REPO = Path(__file__).resolve().parents[2]


def worker_env(app) -> dict:
    return {
        **os.environ, "PYTHONPATH": str(REPO), "TRAFI_EVENT_STORE": app.config.kind,
        "TRAFI_SQLITE_PATH": app.config.sqlite_path, "TRAFI_POSTGRES_DSN": app.config.postgres_dsn,
    }


@pytest.mark.slow
def test_kill_9_mid_batch_repeatedly_under_traffic_equals_a_clean_rebuild(app, bus, shop, tmp_path):
    views = ViewStore(app.config)
    orders = [paid_order(bus, shop) for _ in range(4)]
    stop = threading.Event()
    sent = []

    def traffic():  # one-cent refunds: an event applied twice shows up in the sums
        rng = random.Random(3)
        while not stop.is_set():
            order_id = rng.choice(orders)
            bus.execute(RefundOrder(order_id=order_id, amount=1), shop.ctx)
            sent.append(order_id)
            time.sleep(0.002)

    commands = threading.Thread(target=traffic)
    commands.start()
    rng = random.Random(11)
    kills = positions = 0
    try:
        for _ in range(8):
            worker = subprocess.Popen([sys.executable, "-m", "tests.crash_worker"], env=worker_env(app), cwd=REPO)
            started = views.position("order_list")
            time.sleep(rng.uniform(1.0, 1.8))  # start-up, then a few slow batches
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            positions += views.position("order_list") > started
    finally:
        stop.set()
        commands.join()

    # The real worker command finishes the job.
    head = app.recorder.max_notification_id()
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "projections", "run", "order_list"], env=worker_env(app), cwd=REPO
    )
    deadline = time.monotonic() + 60
    while views.position("order_list") < head and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0

    assert kills == 8 and positions >= 6  # the workers did make progress between kills
    with views.read() as tx:
        refunded = dict(tx.execute("SELECT order_id, refunded FROM rm_orders").fetchall())
    assert sum(refunded.values()) == len(sent)
    assert {o: refunded[str(o)] for o in orders} == {o: sent.count(o) for o in orders}
    assert table_rows(views, OrderList()) == clean_build(app, OrderList(), tmp_path)
    views.close()
