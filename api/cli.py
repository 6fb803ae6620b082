"""The `trafi` command line."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time

from api import cli_audit, cli_projections, cli_serve
from api import cli_payments, cli_relay, cli_webhooks
from api import cli_analytics
from commands.application import TrafiApplication
from commands.bus import CommandBus
from commands.config import EventStoreConfig
from projections import registry
from projections.views import ViewStore
from projections.worker import ProjectionWorker


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f} EUR"  # display only; amounts stay integers everywhere else


def cmd_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("TRAFI_EVENT_STORE", "sqlite")
    os.environ.setdefault("TRAFI_SQLITE_PATH", os.path.join(args.data_dir, "events.sqlite"))
    from api.demo import DEMO_SLUG, seed_demo_store, simulate_buyers

    config = EventStoreConfig.from_env()
    app = TrafiApplication(config)
    bus = CommandBus(app)
    views = ViewStore(config)
    # Embedded mode: the read models are kept current in-process, beside the write side.
    projections = ProjectionWorker(app, views, registry.select(None)).start()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    demo = seed_demo_store(bus, rng)
    seeded = time.perf_counter()
    summary = simulate_buyers(bus, demo, args.buyers, rng)
    done = time.perf_counter()
    where = config.sqlite_path if config.kind == "sqlite" else config.postgres_dsn
    print(f"Trafi demo store '{DEMO_SLUG}' is ready ({config.kind} event store: {where})")
    print(f"  catalogue   {len(demo.variants)} products with unit costs, EU VAT classes and stock "
          f"(seeded in {seeded - started:.1f} s)")
    print(f"  buyers      {summary.carts} carts → {summary.orders} orders "
          f"({summary.paid} paid, {summary.fulfilled} shipped, {summary.cancelled} cancelled, "
          f"{summary.out_of_stock} stopped by stock), {summary.carts - summary.orders - summary.out_of_stock} abandoned")
    print(f"  revenue     {_money(summary.revenue)} paid, in {done - seeded:.1f} s of simulated traffic")
    print(f"  history     {app.recorder.max_notification_id()} events in the append-only log")
    projections.stop()
    projections.run_once()  # whatever arrived after the worker's last pass
    _print_read_side(views, demo.ctx)
    print(cli_analytics.demo_summary(app, os.path.join(args.data_dir, "warehouse.duckdb"), str(demo.ctx.store_id)))
    print("Run it again to add more buyers to the same store; delete the data directory to start over.")
    views.close()
    app.close()
    return 0


def _print_read_side(views: ViewStore, ctx) -> None:
    from queries.dashboard import DashboardQueries
    from queries.stock import StockQueries

    today = DashboardQueries(views).metrics(ctx).today
    low = StockQueries(views).low_stock(ctx)
    print(f"  read side   today {_money(today.revenue.current)} revenue from {today.orders.current} orders "
          f"(average {_money(today.average_order_value.current)}), {len(low)} SKUs low on stock; "
          f"projections current at position {views.position('order_list')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trafi", description="Trafi Core: event-sourced commerce with a profit autopilot")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="seed the embedded demo store and simulate buyers")
    demo.add_argument("--data-dir", default=os.environ.get("TRAFI_DATA_DIR", "trafi-data"))
    demo.add_argument("--buyers", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)
    cli_projections.register(sub)
    cli_audit.register(sub)
    cli_serve.register(sub)
    cli_webhooks.register(sub)
    cli_payments.register(sub)
    cli_relay.register(sub)
    cli_analytics.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("TRAFI_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
