"""Exposures into the warehouse, and the per-arm sufficient statistics the deciders read (AUTOPILOT.md §4–§5).

Part one: exposure rows go through the telemetry log (server-side only), are de-duplicated there and
merged into `exposures` (first exposure wins, visitors seen in two variants marked), without counting as
storefront activity, idempotently under re-feeding. Part two: `experiment_stats` over a real DuckDB
warehouse equals the same statistics computed in numpy from the raw rows.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import UUID

import numpy as np
import pyarrow as pa
import pytest

from autopilot.decider import CHECKOUT_ERRORS, CONVERSION, GROSS_PROFIT_PER_VISITOR
from autopilot.flags.assignment import Assignment, Exposure, Reason, Variant
from autopilot.flags.exposures import append_exposures, exposure_recorder, exposure_row
from autopilot.stats.sufficient import ArmStats
from autopilot.telemetry.health import read_event_flow
from autopilot.telemetry.schemas import check_batch
from autopilot.warehouse.aggregates import VISITOR_KEY
from autopilot.warehouse.experiments import (
    MARGIN_RATE,
    REVENUE_PER_VISITOR,
    ExperimentWindow,
    experiment_stats,
)
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.store import Warehouse
from commands.payments.records import RecordPaymentAttempt
from commands.checkout import Checkout
from tests.integration.test_warehouse_commerce import cart_of
from tests.unit.test_warehouse_feeder import MONDAY, STORE, append, event, open_log, snapshot, us

FLAG = "cs-price-mugs"
T0 = MONDAY


def rows(warehouse: Warehouse, sql: str, params=()) -> list[tuple]:
    with warehouse.reading() as cur:
        return cur.execute(sql, list(params)).fetchall()


def exposures_of(*items, store: str = STORE) -> list[tuple[str, tuple]]:
    return [(store, exposure_row(flag, visitor, variant, at)) for flag, visitor, variant, at in items]


# --- exposures: the telemetry log --------------------------------------------------------------------------


def test_a_browser_cannot_send_an_exposure():
    raw = {"type": "exposure", "event_id": "x1", "occurred_at": "2026-03-02T09:00:00Z", "store_id": STORE,
           "session_id": "s1", "visitor_id": "v1", "properties": {"flag_key": FLAG}}
    page_view = {**raw, "type": "page_view", "event_id": "x2", "url": "https://shop.example/"}
    del page_view["properties"]
    checked = check_batch(json.dumps({"events": [raw, page_view]}).encode(), store_id=UUID(STORE),
                          received_at_us=us(T0))
    assert len(checked.rows) == 1 and checked.rows[0][1] == "page_view"
    [rejection] = checked.rejected
    assert rejection["index"] == 0 and rejection["field"] == "type"
    assert rejection["code"] == "validation.union_tag_invalid"
    assert "exposure" not in rejection["reason"]


def test_exposure_rows_are_deduplicated_by_the_log_and_left_out_of_the_event_flow(tmp_path):
    log = open_log(tmp_path)
    try:
        first = append_exposures(log, exposures_of((FLAG, "v1", "treatment", T0), (FLAG, "v1", "treatment", T0),
                                                   (FLAG, "v2", "control", T0)), received_at_us=us(T0))
        # Another process, or this one after a restart, reports the same exposures again; v1 also in control.
        again = append_exposures(log, exposures_of((FLAG, "v1", "treatment", T0 + timedelta(hours=1)),
                                                   (FLAG, "v1", "control", T0 + timedelta(hours=2))),
                                 received_at_us=us(T0))
        assert first[STORE].accepted == [f"exposure:{FLAG}:v1:treatment", f"exposure:{FLAG}:v2:control"]
        assert again[STORE].accepted == [f"exposure:{FLAG}:v1:control"]
        assert again[STORE].duplicates == [f"exposure:{FLAG}:v1:treatment"]
        stored = log.read(0, 100)
        assert [(r[3], r[7], r[15], json.loads(r[23])) for r in stored] == [
            ("exposure", "v1", "treatment", {"flag_key": FLAG}), ("exposure", "v2", "control", {"flag_key": FLAG}),
            ("exposure", "v1", "control", {"flag_key": FLAG})]
        # Event-flow health measures what browsers deliver: exposures are not in its counters.
        assert log.totals(STORE) == []
        flow = read_event_flow(log, STORE, minutes=5, now_us=us(T0))
        assert flow.accepted == 0 and flow.duplicates == 0
    finally:
        log.close()


def test_the_flag_evaluator_callback_records_arms_only(tmp_path):
    log = open_log(tmp_path)
    try:
        record = exposure_recorder(log, clock=lambda: us(T0))
        record(Exposure(STORE, FLAG, "v1", Assignment(Variant.TREATMENT, Reason.ROLLOUT, 7)))
        record(Exposure(STORE, FLAG, "v2", Assignment(Variant.OFF, Reason.GLOBAL_HOLDOUT, 8)))
        assert [r[2] for r in log.read(0, 10)] == [f"exposure:{FLAG}:v1:treatment"]
    finally:
        log.close()
    with pytest.raises(ValueError):
        exposure_row(FLAG, "v1", "off", T0)


# --- exposures: the warehouse ----------------------------------------------------------------------------


def exposure_traffic() -> list[tuple[str, tuple]]:
    return exposures_of(
        (FLAG, "v1", "treatment", T0 + timedelta(hours=1)),
        (FLAG, "v1", "control", T0 + timedelta(hours=3)),  # later, other variant: v1 is a multiple exposure
        (FLAG, "v2", "control", T0 + timedelta(hours=2)),
        (FLAG, "v3", "treatment", T0 + timedelta(hours=5)),
        ("cs-other", "v1", "control", T0 + timedelta(hours=4)),
    ) + exposures_of((FLAG, "v1", "treatment", T0), store="6c1f8d2b-4a3e-5f5d-8c9b-8e7d6c5b4a3f")


def test_the_feeder_loads_first_exposures_and_marks_multiple_variants(tmp_path):
    log = open_log(tmp_path)
    append(log, [event(0, T0, visitor="v1", session="s1")])
    append_exposures(log, exposure_traffic(), received_at_us=us(T0))
    # A late row of v3's flag, earlier than the one already logged: it becomes the first exposure.
    append_exposures(log, exposures_of((FLAG, "v3", "control", T0 + timedelta(hours=4))), received_at_us=us(T0))
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        WarehouseFeeder(warehouse, telemetry=log, telemetry_batch=2).catch_up()
        assert rows(warehouse, "SELECT store_id = ?, flag_key, visitor_id, variant, first_exposed_at, multiple_variants "
                               "FROM exposures ORDER BY ALL", [STORE]) == [
            (False, FLAG, "v1", "treatment", T0.replace(tzinfo=None), False),
            (True, "cs-other", "v1", "control", (T0 + timedelta(hours=4)).replace(tzinfo=None), False),
            (True, FLAG, "v1", "treatment", (T0 + timedelta(hours=1)).replace(tzinfo=None), True),
            (True, FLAG, "v2", "control", (T0 + timedelta(hours=2)).replace(tzinfo=None), False),
            (True, FLAG, "v3", "control", (T0 + timedelta(hours=4)).replace(tzinfo=None), True),
        ]
        assert rows(warehouse, "SELECT count(*) FROM exposures WHERE visitor_key <> "
                               f"{VISITOR_KEY.replace('store_id', 'exposures.store_id')}") == [(0,)]
        # No storefront activity comes of exposures: the one page view is all there is.
        assert rows(warehouse, "SELECT kind, count(*) FROM events GROUP BY kind") == [("page_view", 1)]
        assert rows(warehouse, "SELECT visitor_id FROM visitors") == [("v1",)]
        assert rows(warehouse, "SELECT count(*) FROM sessions") == [(1,)]
        assert rows(warehouse, "SELECT sum(page_views), sum(sessions) FROM metrics_by_period WHERE grain = 'day'") \
            == [(1, 1)]
        assert rows(warehouse, "SELECT step, visitors FROM funnel_by_period WHERE grain = 'day'") == [(0, 1)]
        assert rows(warehouse, "SELECT last_event_at FROM data_watermarks WHERE store_id = ?", [STORE]) == [
            ((T0 + timedelta(hours=5)).replace(tzinfo=None),)]
    finally:
        warehouse.close()
        log.close()


def test_exposures_are_the_same_however_fed_and_after_a_crash_before_the_position_commits(tmp_path):
    log = open_log(tmp_path)
    append(log, [event(0, T0, visitor="v1"), event(1, T0 + timedelta(minutes=1), visitor="v2", session="s2")])
    append_exposures(log, exposure_traffic(), received_at_us=us(T0))
    whole = Warehouse(tmp_path / "whole.duckdb")
    WarehouseFeeder(whole, telemetry=log).catch_up()

    crashed = Warehouse(tmp_path / "crashed.duckdb")
    crashes = iter([True, False, False])

    def crash(step: str) -> None:
        if step == "aggregates" and next(crashes, False):  # exposures loaded, position not committed yet
            raise RuntimeError("kill -9")

    with pytest.raises(RuntimeError):
        WarehouseFeeder(crashed, telemetry=log, telemetry_batch=3, step=crash).catch_up()
    assert rows(crashed, "SELECT count(*) FROM exposures") == [(0,)]
    WarehouseFeeder(crashed, telemetry=log, telemetry_batch=3).catch_up()

    one_by_one = Warehouse(tmp_path / "one.duckdb")
    WarehouseFeeder(one_by_one, telemetry=log, telemetry_batch=1).catch_up()
    try:
        expected = snapshot(whole)
        assert snapshot(crashed) == expected
        assert snapshot(one_by_one) == expected
        assert len(expected["exposures"]) == 5
        # Loading the same rows once more (a batch applied twice) changes nothing either.
        from autopilot.warehouse.storefront import load_exposures, telemetry_table

        with whole.writing() as cur:
            cur.register("again", telemetry_table(log.read(0, 100)))
            load_exposures(cur, "again")
            cur.unregister("again")
        assert snapshot(whole) == expected
    finally:
        for warehouse in (whole, crashed, one_by_one):
            warehouse.close()
        log.close()


def test_declined_payments_reach_the_warehouse_with_their_visitor(app, bus, shop, tmp_path):
    order_id = UUID(bus.execute(Checkout(cart_id=cart_of(bus, shop, {"MUG-1": 1}, visitor_id="v-7")),
                                shop.ctx).data["order_id"])
    bus.execute(RecordPaymentAttempt(order_id=order_id, attempt=1, provider="stripe", intent_id="pi_1",
                                     status="requires_payment_method", at=1, failure="card_declined"), shop.ctx)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        WarehouseFeeder(warehouse, app=app).catch_up()
        assert rows(warehouse, "SELECT store_id, order_id, visitor_id FROM payment_failures") == [
            (str(shop.ctx.store_id), str(order_id), "v-7")]
    finally:
        warehouse.close()


# --- sufficient statistics against numpy -------------------------------------------------------------------

OTHER = "6c1f8d2b-4a3e-5f5d-8c9b-8e7d6c5b4a3f"
START = datetime(2026, 3, 2)
END = START + timedelta(days=10)


def synthetic(seed: int = 3):
    """Exposures, orders and failures of 3 experiments (2 stores; visitors shared between two flags)."""
    rng = np.random.default_rng(seed)
    exposures, orders, failures = [], [], []
    experiments = [(STORE, "cs-a", 98.0), (STORE, "cs-b", 99.9), (OTHER, "cs-a", 99.0)]
    for store, flag, _ in experiments:
        for i in range(600):
            visitor = f"v{i}"
            if rng.random() < 0.3:
                continue
            at = START + timedelta(days=float(rng.uniform(-2, 11)))  # some before the window, some after its end
            exposures.append((store, flag, visitor, "treatment" if rng.random() < 0.5 else "control", at,
                              bool(rng.random() < 0.03)))
    for store in (STORE, OTHER):
        for i in range(600):
            for _ in range(rng.poisson(0.4)):
                placed = START + timedelta(days=float(rng.uniform(-20, 12)))
                revenue = int(rng.lognormal(8, 1.0))
                refunded = revenue // 3 if rng.random() < 0.15 else 0
                paid = rng.random() < 0.9
                orders.append(dict(store_id=store, order_id=f"{store[:4]}-{len(orders)}", visitor_id=f"v{i}",
                                   placed_at=placed, day=placed.date(), currency="EUR", revenue_minor=revenue,
                                   tax_minor=revenue // 5, cogs_minor=int(revenue * rng.uniform(0.3, 1.4)),
                                   discount_minor=int(rng.integers(0, 300)), shipping_subsidy_minor=0,
                                   payment_fee_minor=revenue // 70 + 25, refunded_minor=refunded,
                                   paid_at=placed + timedelta(minutes=2) if paid else None))
            for _ in range(rng.poisson(0.15)):
                failures.append(dict(store_id=store, event_id=f"f{len(failures)}", order_id="o", visitor_id=f"v{i}",
                                     failed_at=START + timedelta(days=float(rng.uniform(-20, 12)))))
    # Boundaries: exactly 14 days before first exposure (in the covariate), exactly at first exposure
    # (outcome), exactly at window end (neither), a hair before the 14 days (neither).
    store, flag, visitor, variant, at, _ = next(e for e in exposures if e[0] == STORE and e[1] == "cs-a"
                                                 and START <= e[4] < END - timedelta(days=1))
    for placed in (at - timedelta(days=14), at, END, at - timedelta(days=14, microseconds=1)):
        orders.append(dict(store_id=store, order_id=f"edge-{len(orders)}", visitor_id=visitor, placed_at=placed,
                           day=placed.date(), currency="EUR", revenue_minor=5000, tax_minor=0, cogs_minor=1000,
                           discount_minor=0, shipping_subsidy_minor=0, payment_fee_minor=0, refunded_minor=0,
                           paid_at=placed))
    return experiments, exposures, orders, failures


def load(warehouse: Warehouse, exposures, orders, failures) -> None:
    columns = ("store_id", "flag_key", "visitor_id", "variant", "first_exposed_at", "multiple_variants")
    tables = {
        "exposures": pa.table({c: [e[i] for e in exposures] for i, c in enumerate(columns)}),
        "orders": pa.Table.from_pylist(orders),
        "payment_failures": pa.Table.from_pylist(failures),
    }
    with warehouse.writing() as cur:
        for name, table in tables.items():
            if not table.num_rows:
                continue
            cur.register("bulk", table)
            extra = f", {VISITOR_KEY} AS visitor_key" if name == "exposures" else ""
            cur.execute(f"INSERT INTO {name} BY NAME SELECT *{extra} FROM bulk")
            cur.unregister("bulk")
        cur.execute("INSERT INTO data_watermarks VALUES (?, ?), (?, ?)",
                    [STORE, END - timedelta(hours=5), OTHER, END - timedelta(hours=30)])


def reference(store, flag, percentile, exposures, orders, failures):
    """The statistics of one experiment computed in numpy from the raw rows."""
    units = [e for e in exposures if e[0] == store and e[1] == flag and START <= e[4] < END]
    kept = [e for e in units if not e[5]]
    paid = [o for o in orders if o["store_id"] == store and o["paid_at"] is not None]

    def values(visitor, fe):
        covariate, outcome = (fe - timedelta(days=14), fe), (fe, END)
        out = {}
        for name, (lo, hi) in (("x", covariate), ("y", outcome)):
            mine = [o for o in paid if o["visitor_id"] == visitor and lo <= o["placed_at"] < hi]
            out[f"{name}_rev"] = sum(o["revenue_minor"] - o["refunded_minor"] for o in mine)
            out[f"{name}_pro"] = sum(o["revenue_minor"] - o["refunded_minor"] - o["cogs_minor"] - o["discount_minor"]
                                     - o["shipping_subsidy_minor"] - o["payment_fee_minor"] for o in mine)
            out[f"{name}_conv"] = 1.0 if mine else 0.0
            out[f"{name}_err"] = sum(1 for f in failures if f["store_id"] == store and f["visitor_id"] == visitor
                                     and lo <= f["failed_at"] < hi)
        return out

    per_unit = [(e[3], values(e[2], e[4])) for e in kept]
    cap_rev = float(np.percentile([v["y_rev"] for _, v in per_unit], percentile))
    cap_pro = float(np.percentile([v["y_pro"] for _, v in per_unit], percentile))
    stats = {}
    for arm in ("treatment", "control"):
        vs = [v for variant, v in per_unit if variant == arm]
        col = {k: np.array([v[k] for v in vs], dtype=float) for k in vs[0]}
        rev_y, rev_x = np.minimum(col["y_rev"], cap_rev), np.minimum(col["x_rev"], cap_rev)
        pro_y, pro_x = np.minimum(col["y_pro"], cap_pro), np.minimum(col["x_pro"], cap_pro)
        stats[arm] = {
            CONVERSION: ArmStats.from_values(col["y_conv"], col["x_conv"]),
            REVENUE_PER_VISITOR: ArmStats.from_values(rev_y, rev_x),
            GROSS_PROFIT_PER_VISITOR: ArmStats.from_values(pro_y, pro_x),
            MARGIN_RATE: ArmStats.from_values(pro_y, pro_x, rev_y),
            CHECKOUT_ERRORS: ArmStats.from_values(col["y_err"], col["x_err"]),
        }
    counts = (sum(1 for e in kept if e[3] == "treatment"), sum(1 for e in kept if e[3] == "control"),
              sum(1 for e in units if e[5]))
    return stats, counts, (cap_rev, cap_pro)


def test_experiment_stats_equal_numpy_over_the_raw_rows(tmp_path):
    experiments, exposures, orders, failures = synthetic()
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        load(warehouse, exposures, orders, failures)
        windows = [ExperimentWindow(store, flag, START.replace(tzinfo=timezone.utc), END, cap_percentile=p)
                   for store, flag, p in experiments]
        with warehouse.reading() as cur:
            result = experiment_stats(cur, windows, now=END.replace(tzinfo=timezone.utc))
        assert set(result) == {(store, flag) for store, flag, _ in experiments}
        for store, flag, percentile in experiments:
            got = result[(store, flag)]
            stats, counts, caps = reference(store, flag, percentile, exposures, orders, failures)
            assert (got.exposures.treatment_units, got.exposures.control_units,
                    got.exposures.multiple_variant_units) == counts
            assert counts[2] > 0  # the data has multiple-variant visitors to leave out
            assert got.caps["revenue"] == pytest.approx(caps[0]) and got.caps["gross_profit"] == pytest.approx(caps[1])
            for name, arms in got.metrics.items():
                for arm in ("treatment", "control"):
                    want, have = stats[arm][name], getattr(arms, arm)
                    assert have.n == want.n, (store, flag, name, arm)
                    for field in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd"):
                        assert getattr(have, field) == pytest.approx(getattr(want, field), rel=1e-9, abs=1e-6), \
                            (store, flag, name, arm, field)
            assert got.metrics[CONVERSION].is_proportion and not got.metrics[CHECKOUT_ERRORS].higher_is_better
            assert got.metrics[GROSS_PROFIT_PER_VISITOR].higher_is_better
            assert len(got.guardrails()) == 3
        # The data exercises what is compared: capping bites, covariates see earlier orders, errors exist.
        a = result[(STORE, "cs-a")]
        raw = [o["revenue_minor"] - o["refunded_minor"] for o in orders if o["store_id"] == STORE]
        assert 0 < a.caps["revenue"] < max(raw)
        assert a.metrics[REVENUE_PER_VISITOR].treatment.sum_x > 0 and a.metrics[REVENUE_PER_VISITOR].control.sum_y > 0
        assert a.metrics[CHECKOUT_ERRORS].treatment.sum_y + a.metrics[CHECKOUT_ERRORS].control.sum_y > 0
        assert result[(STORE, "cs-a")].watermark == END.replace(tzinfo=timezone.utc) - timedelta(hours=5)
        assert result[(STORE, "cs-a")].hours_since_last_data == pytest.approx(5.0)
        assert result[(OTHER, "cs-a")].hours_since_last_data == pytest.approx(30.0)
    finally:
        warehouse.close()


def test_experiment_stats_boundaries_and_empty_experiments(tmp_path):
    """One visitor, orders on every boundary; an experiment nobody is exposed to."""
    fe = START + timedelta(days=1)
    exposures = [(STORE, "cs-a", "v1", "treatment", fe, False), (STORE, "cs-a", "v2", "control", fe, False),
                 (STORE, "cs-a", "v3", "control", fe, True)]

    def order(i, placed, revenue, paid=True):
        return dict(store_id=STORE, order_id=f"o{i}", visitor_id="v1", placed_at=placed, day=placed.date(),
                    currency="EUR", revenue_minor=revenue, tax_minor=0, cogs_minor=0, discount_minor=0,
                    shipping_subsidy_minor=0, payment_fee_minor=0, refunded_minor=0, paid_at=placed if paid else None)

    orders = [order(1, fe - timedelta(days=14), 100), order(2, fe - timedelta(days=14, microseconds=1), 1000),
              order(3, fe, 10), order(4, END, 10_000), order(5, fe + timedelta(hours=1), 7, paid=False),
              order(6, fe - timedelta(hours=1), 20)]
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        load(warehouse, exposures, orders, [])
        with warehouse.reading() as cur:
            result = experiment_stats(cur, [ExperimentWindow(STORE, "cs-a", START, END, cap_percentile=100),
                                            ExperimentWindow(STORE, "cs-none", START, END)], now=END)
        got = result[(STORE, "cs-a")]
        revenue = got.metrics[REVENUE_PER_VISITOR]
        # y = the order at first exposure; x = 100 + 20 in [fe − 14 d, fe), capped like y (at its maximum, 10).
        assert (revenue.treatment.n, revenue.treatment.sum_y, revenue.treatment.sum_x) == (1, 10.0, 10.0)
        assert got.metrics[CONVERSION].treatment.sum_x == 1.0
        assert (revenue.control.n, revenue.control.sum_y, revenue.control.sum_x) == (1, 0.0, 0.0)
        assert got.metrics[CONVERSION].treatment.sum_y == 1.0
        assert (got.exposures.treatment_units, got.exposures.control_units, got.exposures.multiple_variant_units) \
            == (1, 1, 1)
        none = result[(STORE, "cs-none")]
        assert none.exposures.treatment_units == none.exposures.control_units == 0
        assert none.metrics[CONVERSION].treatment == ArmStats(n=0, sum_y=0.0, sum_y2=0.0)
        assert none.caps == {"revenue": None, "gross_profit": None}
    finally:
        warehouse.close()
