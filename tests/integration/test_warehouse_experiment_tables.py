"""The experiment tables the feeder keeps (autopilot/warehouse/experiment_tables.py) equal a from-scratch
derivation however exposures, orders, payments, refunds and declined payments interleave and however the
logs are cut into batches; a rebuild derives them again; a writer that goes around the feeder makes the
statistics fall back to the source tables (still exact) until the feeder's next batch re-derives them; and
the statistics read from them equal those computed from the source tables, and numpy's.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest

from autopilot.flags.exposures import append_exposures
from autopilot.telemetry.log import TelemetryLog
from autopilot.warehouse import experiment_tables
from autopilot.warehouse import experiments as experiments_module
from autopilot.warehouse.experiments import ExperimentWindow, experiment_stats
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.rebuild import rebuild_warehouse
from autopilot.warehouse.storefront import load_exposures, telemetry_table
from autopilot.warehouse.store import Warehouse
from commands.checkout import Checkout
from commands.orders import MarkOrderPaid, RefundOrder
from commands.payments.records import RecordPaymentAttempt
from tests.integration.test_warehouse_commerce import cart_of
from tests.integration.test_warehouse_experiments import (
    END,
    START,
    STORE,
    exposures_of,
    load,
    reference,
    synthetic,
)
from tests.unit.test_warehouse_feeder import us

FLAGS = ("cs-a", "cs-b")
FIELDS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")


def derived(warehouse: Warehouse) -> dict[str, list[tuple]]:
    with warehouse.reading() as cur:
        return {table: cur.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                for table in ("experiment_units", "experiment_activity")}


def from_scratch(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """The tables derived from scratch from the same source rows (in a transaction rolled back)."""
    cur = warehouse.cursor()
    try:
        cur.execute("BEGIN TRANSACTION")
        experiment_tables.refresh(cur)
        result = {table: cur.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                  for table in ("experiment_units", "experiment_activity")}
        cur.execute("ROLLBACK")
        return result
    finally:
        cur.close()


def in_sync(warehouse: Warehouse) -> bool:
    with warehouse.reading() as cur:
        return experiment_tables.in_sync(cur)


def stats(warehouse: Warehouse, windows, *, exact: bool = False, monkeypatch=None):
    """experiment_stats; `exact`: computed from the source tables alone (the derived tables ignored)."""
    with warehouse.reading() as cur:
        if not exact:
            return experiment_stats(cur, windows)
        monkeypatch.setattr(experiment_tables, "in_sync", lambda _: False)
        try:
            return experiment_stats(cur, windows)
        finally:
            monkeypatch.undo()


def assert_same_stats(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, have in got.items():
        other = want[key]
        assert have.exposures == other.exposures, key
        for cap in ("revenue", "gross_profit"):
            assert (have.caps[cap] is None) == (other.caps[cap] is None), (key, cap)
            if have.caps[cap] is not None:
                assert have.caps[cap] == pytest.approx(other.caps[cap], rel=1e-12), (key, cap)
        for name, arms in have.metrics.items():
            for arm in ("treatment", "control"):
                mine, theirs = getattr(arms, arm), getattr(other.metrics[name], arm)
                for field in FIELDS:
                    assert math.isclose(getattr(mine, field), getattr(theirs, field), rel_tol=1e-9, abs_tol=1e-6), \
                        (key, name, arm, field)


# --- through the feeder ----------------------------------------------------------------------------------


def _traffic(rng: random.Random, bus, shop, telemetry: TelemetryLog, now: datetime) -> list:
    """Random interleaved exposures (late earlier ones, second variants) and orders, payments, refunds and
    declined payments of the same visitors, in both logs; returns the feeding points (a callable each)."""
    store = str(shop.ctx.store_id)
    steps = []
    visitors = [f"v-{i}" for i in range(8)]
    for _ in range(24):
        visitor = rng.choice(visitors)
        kind = rng.random()
        if kind < 0.45:
            flag = rng.choice(FLAGS)
            variant = rng.choice(("treatment", "treatment", "control"))
            # around now: orders fall in the outcome, in the covariate window, or 14 days before it
            at = now + timedelta(hours=rng.choice((-48, -2, 1, 30, 24 * 13, 24 * 15)), minutes=rng.randrange(60))
            steps.append(lambda f=flag, v=visitor, var=variant, a=at: append_exposures(
                telemetry, exposures_of((f, v, var, a), store=store), received_at_us=us(now)))
        else:
            def commerce(v=visitor, paid=rng.random() < 0.8, refund=rng.random() < 0.3, fail=rng.random() < 0.3):
                cart_id = cart_of(bus, shop, {"MUG-1": 1}, visitor_id=v)
                placed = bus.execute(Checkout(cart_id=cart_id), shop.ctx).data
                order_id = UUID(placed["order_id"])
                if fail:
                    bus.execute(RecordPaymentAttempt(order_id=order_id, attempt=1, provider="stripe", intent_id="pi",
                                                     status="requires_payment_method", at=1,
                                                     failure="card_declined"), shop.ctx)
                if paid:
                    bus.execute(MarkOrderPaid(order_id=order_id, amount=placed["total"], reference="bank"), shop.ctx)
                    if refund:
                        bus.execute(RefundOrder(order_id=order_id, amount=placed["total"] // 2, restock={}), shop.ctx)
            steps.append(commerce)
    return steps


@pytest.mark.parametrize("seed", [1])
def test_the_feeders_tables_equal_a_derivation_from_scratch_after_any_interleaving(app, bus, shop, tmp_path,
                                                                                   monkeypatch, seed):
    rng = random.Random(seed)
    telemetry = TelemetryLog.open(app.config)
    now = datetime.now(timezone.utc)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        feeder = WarehouseFeeder(warehouse, app=app, telemetry=telemetry, telemetry_batch=rng.choice((1, 2, 5)),
                                 commerce_batch=rng.choice((1, 3, 7)))
        for step in _traffic(rng, bus, shop, telemetry, now):
            step()
            if rng.random() < 0.4:
                feeder.feed_once() if rng.random() < 0.5 else feeder.catch_up()
                assert in_sync(warehouse)
                assert derived(warehouse) == from_scratch(warehouse)
        feeder.catch_up()
        assert in_sync(warehouse)
        tables = derived(warehouse)
        assert tables == from_scratch(warehouse)
        assert tables["experiment_units"] and tables["experiment_activity"]  # the data exercises both
        # Statistics from the maintained tables equal those from the source tables, for a window holding
        # every first exposure (the maintained path) and for narrower ones (the fallback).
        store = str(shop.ctx.store_id)
        for start, end in ((now - timedelta(days=30), now + timedelta(days=30)),
                           (now - timedelta(hours=3), now + timedelta(days=30)),
                           (now - timedelta(days=30), now - timedelta(minutes=5))):
            windows = [ExperimentWindow(store, flag, start, end, cap_percentile=90) for flag in FLAGS]
            assert_same_stats(stats(warehouse, windows), stats(warehouse, windows, exact=True, monkeypatch=monkeypatch))

        # A rebuild from position 0 derives the same tables, fed in other batches.
        warehouse.close()
        rebuild_warehouse(str(tmp_path / "w.duckdb"), app=app, telemetry=telemetry, telemetry_batch=3,
                          commerce_batch=4)
        warehouse = Warehouse(tmp_path / "w.duckdb")
        assert in_sync(warehouse)
        assert derived(warehouse) == tables
    finally:
        warehouse.close()
        telemetry.close()


def test_a_batch_of_exposures_applied_twice_or_crashed_changes_nothing(app, bus, shop, tmp_path):
    telemetry = TelemetryLog.open(app.config)
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    append_exposures(telemetry, exposures_of(("cs-a", "v-1", "treatment", now - timedelta(hours=1)),
                                             ("cs-a", "v-2", "control", now - timedelta(hours=1)),
                                             ("cs-a", "v-1", "control", now), store=store), received_at_us=us(now))
    cart_id = cart_of(bus, shop, {"MUG-1": 1}, visitor_id="v-1")
    placed = bus.execute(Checkout(cart_id=cart_id), shop.ctx).data
    bus.execute(MarkOrderPaid(order_id=UUID(placed["order_id"]), amount=placed["total"], reference="x"), shop.ctx)
    crashed = Warehouse(tmp_path / "crashed.duckdb")
    whole = Warehouse(tmp_path / "whole.duckdb")
    try:
        def crash(step: str) -> None:
            if step == "exposures":
                raise RuntimeError("kill -9")

        with pytest.raises(RuntimeError):
            WarehouseFeeder(crashed, app=app, telemetry=telemetry, step=crash).catch_up()
        WarehouseFeeder(crashed, app=app, telemetry=telemetry).catch_up()
        WarehouseFeeder(whole, app=app, telemetry=telemetry).catch_up()
        expected = derived(whole)
        assert derived(crashed) == expected == from_scratch(whole)
        assert expected["experiment_units"][0][2:5] == (0, 1, 1)  # v-1 in both variants, v-2 in control
        with whole.writing() as cur:
            cur.register("again", telemetry_table(telemetry.read(0, 100)))
            load_exposures(cur, "again")
            cur.unregister("again")
        assert derived(whole) == expected and in_sync(whole)
    finally:
        crashed.close()
        whole.close()
        telemetry.close()


def test_a_writer_around_the_feeder_makes_the_statistics_fall_back_until_the_next_batch(app, bus, shop, tmp_path,
                                                                                        monkeypatch):
    telemetry = TelemetryLog.open(app.config)
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    append_exposures(telemetry, exposures_of(*[("cs-a", f"v-{i}", ("treatment", "control")[i % 2],
                                                now - timedelta(hours=2)) for i in range(6)], store=store),
                     received_at_us=us(now))
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        feeder = WarehouseFeeder(warehouse, app=app, telemetry=telemetry)
        feeder.catch_up()
        assert in_sync(warehouse)
        with warehouse.writing() as cur:  # as tests and the simulator do: straight into orders
            cur.execute("""INSERT INTO orders (store_id, order_id, visitor_id, placed_at, day, currency, revenue_minor,
                               tax_minor, cogs_minor, discount_minor, shipping_subsidy_minor, payment_fee_minor,
                               refunded_minor, paid_at)
                           VALUES (?, 'o-direct', 'v-1', ?, ?, 'EUR', 4000, 0, 1000, 0, 0, 0, 0, ?)""",
                        [store, (now - timedelta(hours=1)).replace(tzinfo=None), now.date(),
                         (now - timedelta(hours=1)).replace(tzinfo=None)])
        assert not in_sync(warehouse)
        windows = [ExperimentWindow(store, "cs-a", now - timedelta(days=1), now + timedelta(days=1), cap_percentile=100)]
        got = stats(warehouse, windows)
        assert got[(store, "cs-a")].metrics["revenue_per_visitor"].control.sum_y == 4000  # v-1 is in control
        assert_same_stats(got, stats(warehouse, windows, exact=True, monkeypatch=monkeypatch))
        # The feeder's next batch that touches orders derives the tables again.
        cart_id = cart_of(bus, shop, {"MUG-1": 1}, visitor_id="v-2")
        bus.execute(Checkout(cart_id=cart_id), shop.ctx)
        feeder.catch_up()
        assert in_sync(warehouse)
        assert derived(warehouse) == from_scratch(warehouse)
        assert_same_stats(stats(warehouse, windows), got)
    finally:
        warehouse.close()
        telemetry.close()


# --- against numpy ---------------------------------------------------------------------------------------


def test_statistics_from_the_derived_tables_equal_numpy_over_the_raw_rows(tmp_path, monkeypatch):
    """The synthetic experiments of test_warehouse_experiments, cut to what a production window holds: every
    first exposure in [START, END) and no activity after END; the derived tables then serve every experiment."""
    experiments, exposures, orders, failures = synthetic()
    exposures = [e for e in exposures if START <= e[4] < END]
    orders = [o for o in orders if o["placed_at"] < END]
    failures = [f for f in failures if f["failed_at"] < END]
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        load(warehouse, exposures, orders, failures)
        assert not in_sync(warehouse)
        with warehouse.writing() as cur:
            experiment_tables.refresh(cur)
        assert in_sync(warehouse)
        windows = [ExperimentWindow(store, flag, START, END, cap_percentile=p) for store, flag, p in experiments]
        # The derived tables only: counting the exposures would fail the test.
        monkeypatch.setattr(experiments_module, "_COUNTS", "SELECT error('the exposures were counted')")
        with warehouse.reading() as cur:
            result = experiment_stats(cur, windows)
        for store, flag, percentile in experiments:
            got = result[(store, flag)]
            want, counts, caps = reference(store, flag, percentile, exposures, orders, failures)
            assert (got.exposures.treatment_units, got.exposures.control_units,
                    got.exposures.multiple_variant_units) == counts
            assert got.caps["revenue"] == pytest.approx(caps[0]) and got.caps["gross_profit"] == pytest.approx(caps[1])
            for name, arms in got.metrics.items():
                for arm in ("treatment", "control"):
                    for field in FIELDS:
                        assert getattr(getattr(arms, arm), field) == pytest.approx(
                            getattr(want[arm][name], field), rel=1e-9, abs=1e-6), (store, flag, name, arm, field)
        assert result[(STORE, "cs-a")].metrics["revenue_per_visitor"].treatment.sum_x > 0
    finally:
        warehouse.close()
