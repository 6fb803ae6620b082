"""A feeder that dies mid-batch leaves no trace of the batch; the next one ends where a clean rebuild does.

Two ways to die: an exception injected between the statements of a batch (in-process, at every
step of both sources), and a real `kill -9` of a process feeding the DuckDB file while it is
inside a batch's transaction. Each time a new feeder on the same file catches up, and every table
is compared with a warehouse built from position 0 in one go.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autopilot.telemetry.log import TelemetryLog
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.store import Warehouse
from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from commands.orders import RefundOrder
from tests.integration.test_warehouse_commerce import place_paid_order
from tests.unit.test_warehouse_feeder import TABLES, event, snapshot, us

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY_STEPS = ("staged", "events", "visitors", "visitor_days", "sessions", "orders", "aggregates")
COMMERCE_STEPS = ("orders", "payments", "events", "visitors", "visitor_days", "sessions", "aggregates")


class Crash(Exception):
    pass


@pytest.fixture
def history(app, bus, shop):
    """Both logs with a few days of storefront traffic and orders (some refunded, one abandoned cart)."""
    telemetry = TelemetryLog.open(app.config)
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    for n in range(6):
        visitor = f"v-{n}"
        at = now - timedelta(days=n % 3, minutes=n)
        telemetry.append(store, [
            event(0, at, visitor=visitor, session=f"s-{n}", device=("mobile", "desktop")[n % 2], source="direct"),
            event(1, at + timedelta(seconds=5), visitor=visitor, session=f"s-{n}", product=str(shop.products["MUG-1"])),
            event(2, at + timedelta(seconds=9), visitor=visitor, session=f"s-{n}", country="DE"),
            event(0, at, visitor=None, session=None),
        ], received_at_us=us(now))
        if n % 2 == 0:
            _, order_id, placed = place_paid_order(bus, shop, {"MUG-1": 1 + n // 2}, visitor_id=visitor)
            if n == 2:
                bus.execute(RefundOrder(order_id=order_id, amount=placed["total"] // 2), shop.ctx)
    yield telemetry
    telemetry.close()


def clean_build(path: Path, app, telemetry) -> dict:
    warehouse = Warehouse(path)
    try:
        WarehouseFeeder(warehouse, app=app, telemetry=telemetry).catch_up()
        return snapshot(warehouse)
    finally:
        warehouse.close()


def crash_at(source: str, step_name: str, batch_number: int):
    """A step hook that raises at `step_name` of the `batch_number`-th batch of `source` (1-based)."""
    seen = {"batches": 0, "source": None}

    def step(name: str) -> None:
        if name == ("staged" if source == "telemetry" else "orders") and seen["source"] != "open":
            seen["batches"] += 1
            seen["source"] = "open"
        if name == "aggregates":
            seen["source"] = None
        if name == step_name and seen["batches"] == batch_number:
            raise Crash(f"{source} batch {batch_number} at {step_name}")

    return step


@pytest.mark.parametrize("source, step_name", [
    *(("telemetry", s) for s in TELEMETRY_STEPS), *(("commerce", s) for s in COMMERCE_STEPS)])
def test_an_exception_between_the_statements_of_a_batch_leaves_no_trace(app, history, tmp_path, source, step_name):
    path = tmp_path / "crashed.duckdb"
    warehouse = Warehouse(path)
    options = dict(app=app if source == "commerce" else None, telemetry=history if source == "telemetry" else None,
                   telemetry_batch=5, commerce_batch=9)
    feed = WarehouseFeeder(warehouse, **options).feed_telemetry if source == "telemetry" else \
        WarehouseFeeder(warehouse, **options).feed_commerce
    assert feed() > 0  # batch 1 goes through
    before = snapshot(warehouse)
    crashing = WarehouseFeeder(warehouse, step=crash_at(source, step_name, 1), **options)
    with pytest.raises(Crash):
        crashing.feed_telemetry() if source == "telemetry" else crashing.feed_commerce()
    assert snapshot(warehouse) == before  # rolled back: not one row of the batch, the position unmoved

    WarehouseFeeder(warehouse, app=app, telemetry=history, telemetry_batch=3, commerce_batch=4).catch_up()
    resumed = snapshot(warehouse)
    warehouse.close()
    assert resumed == clean_build(tmp_path / "clean.duckdb", app, history)


def _feed_until_killed(config: str, warehouse_path: str, marker: str) -> None:
    """The child: feed in small batches and, inside the third telemetry batch's transaction, stop and wait."""
    config = EventStoreConfig(**json.loads(config))
    app = TrafiApplication(config)
    telemetry = TelemetryLog.open(config)
    batches = {"n": 0}

    def step(name: str) -> None:
        if name == "staged":
            batches["n"] += 1
        if name == "visitor_days" and batches["n"] == 3:
            Path(marker).write_text(str(os.getpid()))
            time.sleep(120)  # killed here, with the batch's events, visitors and visitor-days written

    WarehouseFeeder(Warehouse(warehouse_path), app=app, telemetry=telemetry, telemetry_batch=4, commerce_batch=6,
                    step=step).catch_up()


def test_kill_9_of_the_feeding_process_mid_batch_then_a_new_feeder_equals_a_clean_rebuild(app, history, tmp_path):
    path, marker = tmp_path / "killed.duckdb", tmp_path / "inside-the-batch"
    config = json.dumps(asdict(app.config))
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tests.integration.test_warehouse_crash import _feed_until_killed; "
                               "_feed_until_killed(*sys.argv[1:])", config, str(path), str(marker)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert child.poll() is None, f"the feeding process ended early ({child.returncode})"
            assert time.monotonic() < deadline, "the feeding process never reached the third batch"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()

    warehouse = Warehouse(path)
    positions = warehouse.positions()
    with warehouse.reading() as cur:
        stored = cur.execute("SELECT count(*) FROM events WHERE source = 'telemetry'").fetchall()[0][0]
    assert positions["telemetry"] == 8 and stored == 8  # two whole batches of 4; nothing of the third
    assert 0 < positions["commerce"] < (app.recorder.max_notification_id() or 0)

    WarehouseFeeder(warehouse, app=app, telemetry=history, telemetry_batch=7, commerce_batch=5).catch_up()
    resumed = snapshot(warehouse)
    warehouse.close()
    clean = clean_build(tmp_path / "clean.duckdb", app, history)
    for table in TABLES:
        assert resumed[table] == clean[table], table
