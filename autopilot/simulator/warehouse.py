"""The simulated days straight into a DuckDB warehouse: `visitor_days` and `orders`, as Arrow tables.

For tests and benchmarks that need weeks of funnel data in a second; the demo goes through
the storefront events instead. Rows of the simulated store already there are replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from autopilot.simulator.simulation import Simulation
from autopilot.warehouse.schema import create_schema

VISITOR_DAY_COLUMNS = ("store_id", "day", "visitor_id", "device", "country", "traffic_source", "is_returning",
                       "max_step")
ORDER_COLUMNS = ("store_id", "order_id", "visitor_id", "placed_at", "day", "currency", "revenue_minor", "tax_minor",
                 "cogs_minor", "discount_minor", "shipping_subsidy_minor", "payment_fee_minor", "refunded_minor",
                 "paid_at", "device", "country", "traffic_source")


@dataclass(frozen=True)
class Loaded:
    visitor_days: int
    orders: int


def tables(simulation: Simulation) -> tuple[pa.Table, pa.Table]:
    """(visitor_days, orders) of every simulated day."""
    days, orders = [], []
    for day in simulation.dates():
        visitors = simulation.visitors(day)
        days.append(pa.table({
            "store_id": pa.array(np.full(len(visitors), simulation.profile.store_id, dtype=object), pa.string()),
            "day": pa.array(np.full(len(visitors), np.datetime64(day, "D")), pa.date32()),
            "visitor_id": pa.array(visitors.visitor_id, pa.string()),
            "device": pa.array(visitors.device, pa.string()),
            "country": pa.array(visitors.country, pa.string()),
            "traffic_source": pa.array(visitors.traffic_source, pa.string()),
            "is_returning": pa.array(visitors.is_returning, pa.bool_()),
            "max_step": pa.array(visitors.max_step, pa.int8()),
        }))
        columns = simulation.orders(day, visitors)
        orders.append(pa.table({
            name: pa.array(columns[name], _ORDER_TYPES.get(name, pa.string())) for name in ORDER_COLUMNS
        }))
    return pa.concat_tables(days), pa.concat_tables(orders)


_ORDER_TYPES = {
    "placed_at": pa.timestamp("us"), "paid_at": pa.timestamp("us"), "day": pa.date32(),
    **{name: pa.int64() for name in ORDER_COLUMNS if name.endswith("_minor")},
}


def load_into(target, simulation: Simulation) -> Loaded:
    """Write the simulation's visitor-days and orders in one transaction.

    `target`: a DuckDB connection (the schema is created if needed), or a `Warehouse`
    (autopilot/warehouse/store.py), whose write lock and transaction are used — its feeder
    may be writing at the same time.
    """
    visitor_days, orders = tables(simulation)
    if hasattr(target, "writing"):
        with target.writing() as cur:
            _write(cur, simulation, visitor_days, orders)
    else:
        create_schema(target)
        target.execute("BEGIN TRANSACTION")
        try:
            _write(target, simulation, visitor_days, orders)
        except BaseException:
            target.execute("ROLLBACK")
            raise
        target.execute("COMMIT")
    return Loaded(visitor_days.num_rows, orders.num_rows)


def _write(cur, simulation: Simulation, visitor_days: pa.Table, orders: pa.Table) -> None:
    store_id, start, end = simulation.profile.store_id, simulation.start, simulation.end
    cur.register("sim_visitor_days", visitor_days)
    cur.register("sim_orders", orders)
    try:
        cur.execute("DELETE FROM visitor_days WHERE store_id = ? AND day BETWEEN ? AND ?", [store_id, start, end])
        cur.execute("DELETE FROM orders WHERE store_id = ? AND day BETWEEN ? AND ?", [store_id, start, end])
        cur.execute(f"INSERT INTO visitor_days ({', '.join(VISITOR_DAY_COLUMNS)}) "
                    f"SELECT {', '.join(VISITOR_DAY_COLUMNS)} FROM sim_visitor_days")
        cur.execute(f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) SELECT {', '.join(ORDER_COLUMNS)} FROM sim_orders")
    finally:
        cur.unregister("sim_visitor_days")
        cur.unregister("sim_orders")
