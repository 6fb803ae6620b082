"""What every benchmark script shares: percentiles, a throw-away PostgreSQL database, the app."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys

import psycopg

ADMIN_DSN = os.environ.get("TRAFI_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def logger(prefix: str):
    def log(*parts: object) -> None:
        print(f"[{prefix}]", *parts, file=sys.stderr, flush=True)

    return log


def pctl(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def dsn_for(name: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


@contextlib.contextmanager
def bench_database(log):
    """A fresh database `trafi_bench_<hex>`, dropped WITH (FORCE) afterwards — also on error or Ctrl-C."""
    name = f"trafi_bench_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log("created database", name)
    try:
        yield name
    finally:
        try:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log("dropped database", name)
        except Exception as error:  # never hide the original error behind this one
            log(f"could not drop database {name}: {error!r}")


def sigterm_to_exit(signum, frame):
    """Install with signal.signal(SIGTERM, …): SystemExit lets `finally` drop the database."""
    raise SystemExit(128 + signum)


def make_app(db: str, pool_size: int):
    from commands.application import TrafiApplication
    from commands.config import EventStoreConfig

    return TrafiApplication(EventStoreConfig(kind="postgres", postgres_dsn=dsn_for(db), pool_size=pool_size))


def add_products(bus, shop, count: int, stock: int) -> list[str]:
    """More products, so that checkouts spread over a catalogue instead of 3 stock items."""
    from uuid import UUID

    from commands.catalog import AddVariant, ChangeProductStatus, CreateProduct
    from commands.stock import ReceiveStock

    skus = []
    for i in range(count):
        sku = f"X-{i}"
        pid = UUID(bus.execute(CreateProduct(handle=f"x-{i}", title=f"Extra {i}"), shop.ctx).data["product_id"])
        bus.execute(AddVariant(product_id=pid, sku=sku, price=1000 + i, unit_cost=500, weight_grams=300, tax_class="standard"), shop.ctx)
        bus.execute(ChangeProductStatus(product_id=pid, status="active"), shop.ctx)
        bus.execute(ReceiveStock(sku=sku, quantity=stock), shop.ctx)
        shop.products[sku] = pid
        skus.append(sku)
    return skus


def merge_runs(runs: list[dict]) -> dict:
    """Closed-loop load rounds (requests, seconds, latencies_ms, statuses) as one."""
    statuses: dict[int, int] = {}
    for run in runs:
        for status, n in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    return {"requests": sum(x["requests"] for x in runs), "seconds": sum(x["seconds"] for x in runs),
            "latencies_ms": [v for x in runs for v in x["latencies_ms"]], "statuses": statuses}
