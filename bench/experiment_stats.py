"""Experiment statistics benchmark: one decider tick's sufficient statistics, 100 ChangeSets, 10 M exposures.

    PYTHONPATH=. python bench/experiment_stats.py                               # ~1–2 minutes, a few GB of RAM
    PYTHONPATH=. python bench/experiment_stats.py --exposures 1000000           # quick look

Progress goes to stderr; stdout is ONE JSON line. The figure stands beside its baseline and the ratio.

`decider_stats_ms_100cs_10m`: `autopilot.warehouse.experiments.experiment_stats` over all `--changesets`
active experiments at once (every metric of §5 per arm: conversion, revenue, gross profit, margin rate,
checkout errors, with 99.9th-percentile winsorisation and 14-day CUPED covariates), best of 3 warm runs.
The warehouse is a DuckDB file built by `autopilot.warehouse.store.Warehouse` (its schema, primary keys
included) and filled in bulk from Arrow: `--exposures` first exposures over 20 stores with 5 flags each,
spread over 14 days, 0.2 % of visitors seen in both variants; paid orders from about 3 % of exposed
visitors in the window plus earlier orders for the covariates (refunds, unpaid orders, heavy-tailed
order values), and declined payments. Baseline: `SELECT store_id, flag_key, variant, count(*) FROM
exposures GROUP BY ALL` on the same file, best of 3 — the least any per-arm statistic has to read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from autopilot.warehouse import experiment_tables  # noqa: E402
from autopilot.warehouse.aggregates import VISITOR_KEY  # noqa: E402
from autopilot.warehouse.experiments import ExperimentWindow, experiment_stats  # noqa: E402
from autopilot.warehouse.store import Warehouse  # noqa: E402
from bench.common import logger, r  # noqa: E402

log = logger("experiment_stats")
END = datetime(2026, 11, 20)
WINDOW = timedelta(days=14)
FLAGS_PER_STORE = 5
CONVERSION = 0.03
MULTIPLE = 0.002
US = 1_000_000


def _store_ids(count: int) -> list[str]:
    return [f"00000000-0000-5000-8000-{i:012d}" for i in range(count)]


def _ts(base: datetime, offsets_us: np.ndarray) -> pa.Array:
    start = int(base.timestamp() * US) if base.tzinfo else int((base - datetime(1970, 1, 1)).total_seconds() * US)
    return pa.array(start + offsets_us, pa.int64()).cast(pa.timestamp("us"))


def build(path: str, *, changesets: int, exposures: int, seed: int) -> list[ExperimentWindow]:
    """The synthetic warehouse file; returns the experiments' windows."""
    rng = np.random.default_rng(seed)
    stores = _store_ids(max(1, changesets // FLAGS_PER_STORE))
    per_flag = exposures // changesets
    pool = int(per_flag * 2.5)  # a store's visitors; its flags reach overlapping subsets of them
    window_us = int(WINDOW.total_seconds() * US)
    start = END - WINDOW
    warehouse = Warehouse(path)
    experiments = []
    flag_index = 0
    try:
        for store in stores:
            ex_tables, order_tables, failure_tables = [], [], []
            for f in range(FLAGS_PER_STORE):
                if flag_index >= changesets:
                    break
                flag = f"cs-{flag_index:03d}"
                flag_index += 1
                visitors = rng.choice(pool, per_flag, replace=False)
                n = len(visitors)
                ex_tables.append(pa.table({
                    "store_id": pa.array(np.full(n, store, dtype=object), pa.string()),
                    "flag_key": pa.array(np.full(n, flag, dtype=object), pa.string()),
                    "visitor_id": pa.array(np.char.add("v-", visitors.astype(str)), pa.string()),
                    "variant": pa.array(np.where(rng.random(n) < 0.5, "treatment", "control"), pa.string()),
                    "first_exposed_at": _ts(start, rng.integers(0, window_us, n)),
                    "multiple_variants": pa.array(rng.random(n) < MULTIPLE, pa.bool_()),
                }))
                experiments.append(ExperimentWindow(store, flag, start, END))
            # Orders over the window and the 14 days before it: about CONVERSION of exposed visitors in the window.
            n_orders = int(pool * CONVERSION * 4)  # half before the window; a unit sees half the window on average
            who = rng.integers(0, pool, n_orders)
            placed = rng.integers(-window_us, window_us, n_orders)
            revenue = np.round(rng.lognormal(8.3, 0.9, n_orders)).astype(np.int64)  # median ~40 €, heavy tail
            paid = rng.random(n_orders) < 0.95
            refunded = np.where(rng.random(n_orders) < 0.05, revenue // 2, 0)
            order_ids = np.char.add(f"o-{store[-4:]}-", np.arange(n_orders).astype(str))
            order_tables.append(pa.table({
                "store_id": pa.array(np.full(n_orders, store, dtype=object), pa.string()),
                "order_id": pa.array(order_ids, pa.string()),
                "visitor_id": pa.array(np.char.add("v-", who.astype(str)), pa.string()),
                "placed_at": _ts(start, placed),
                "day": _ts(start, placed).cast(pa.date32()),
                "currency": pa.array(np.full(n_orders, "EUR", dtype=object), pa.string()),
                "revenue_minor": pa.array(revenue), "tax_minor": pa.array(revenue // 5),
                "cogs_minor": pa.array(revenue * 55 // 100), "discount_minor": pa.array(np.zeros(n_orders, np.int64)),
                "shipping_subsidy_minor": pa.array(np.zeros(n_orders, np.int64)),
                "payment_fee_minor": pa.array(revenue * 14 // 1000 + 25), "refunded_minor": pa.array(refunded),
                "paid_at": _ts(start, placed + 60 * US).cast(pa.int64()).to_numpy().astype("datetime64[us]"),
            }))
            t = order_tables[-1]
            paid_at = pa.array(t.column("paid_at").to_numpy(), mask=~paid, type=pa.timestamp("us"))
            order_tables[-1] = t.set_column(t.schema.get_field_index("paid_at"), "paid_at", paid_at)
            n_fail = n_orders // 6
            failure_tables.append(pa.table({
                "store_id": pa.array(np.full(n_fail, store, dtype=object), pa.string()),
                "event_id": pa.array(np.char.add(f"f-{store[-4:]}-", np.arange(n_fail).astype(str)), pa.string()),
                "order_id": pa.array(order_ids[:n_fail], pa.string()),
                "visitor_id": pa.array(np.char.add("v-", who[:n_fail].astype(str)), pa.string()),
                "failed_at": _ts(start, placed[:n_fail] + 30 * US),
            }))
            with warehouse.writing() as cur:
                for name, tables in (("exposures", ex_tables), ("orders", order_tables),
                                     ("payment_failures", failure_tables)):
                    batch = pa.concat_tables(tables)
                    cur.register("bulk", batch)
                    if name == "exposures":  # the key the feeder stores with each exposure (storefront.load_exposures)
                        cur.execute(f"INSERT INTO exposures BY NAME SELECT *, {VISITOR_KEY} AS visitor_key FROM bulk")
                    else:
                        cur.execute(f"INSERT INTO {name} BY NAME SELECT * FROM bulk")
                    cur.unregister("bulk")
                cur.execute("INSERT INTO data_watermarks VALUES (?, ?)", [store, END - timedelta(minutes=3)])
            log(f"store {store[-3:]}: {sum(t.num_rows for t in ex_tables)} exposures, {n_orders} orders")
        # The rows went in around the feeder: derive what it keeps for the deciders in each batch.
        started = time.perf_counter()
        with warehouse.writing() as cur:
            experiment_tables.refresh(cur)
        log(f"experiment tables derived in {time.perf_counter() - started:.1f} s")
        warehouse.checkpoint()
    finally:
        warehouse.close()
    return experiments


def _best(run, times: int = 3) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def measure(changesets: int = 100, exposures: int = 10_000_000, seed: int = 7, directory: str | None = None,
            on_result=None) -> dict:
    """The figures; `on_result(experiments, stats)`, if given, receives the windows and the last pass's
    ExperimentStats (bench/autopilot.py decides on them), after the timings."""
    with tempfile.TemporaryDirectory(prefix="trafi-bench-exp-", dir=directory) as tmp:
        path = os.path.join(tmp, "warehouse.duckdb")
        started = time.perf_counter()
        experiments = build(path, changesets=changesets, exposures=exposures, seed=seed)
        build_s = time.perf_counter() - started
        log(f"built in {build_s:.1f} s")
        warehouse = Warehouse(path)
        try:
            with warehouse.reading() as cur:
                total = cur.execute("SELECT count(*) FROM exposures").fetchall()[0][0]
                orders = cur.execute("SELECT count(*) FROM orders").fetchall()[0][0]
                experiment_stats(cur, experiments, now=END)  # warm-up
                stats_ms = _best(lambda: experiment_stats(cur, experiments, now=END))
                baseline_sql = "SELECT store_id, flag_key, variant, count(*) FROM exposures GROUP BY ALL"
                cur.execute(baseline_sql).fetchall()
                baseline_ms = _best(lambda: cur.execute(baseline_sql).fetchall())
                result = experiment_stats(cur, experiments, now=END)
                if on_result is not None:
                    on_result(experiments, result)
        finally:
            warehouse.close()
    some = next(iter(result.values()))
    return {
        "decider_stats_ms_100cs_10m": r(stats_ms, 1), "baseline_ms": r(baseline_ms, 1),
        "ratio": r(stats_ms / baseline_ms, 2), "changesets": len(experiments), "exposures": total, "orders": orders,
        "build_s": r(build_s, 1), "cpus": os.cpu_count(),
        "example_units": [some.exposures.treatment_units, some.exposures.control_units,
                          some.exposures.multiple_variant_units],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changesets", type=int, default=100)
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(measure(args.changesets, args.exposures, args.seed)), flush=True)


if __name__ == "__main__":
    main()
