"""Read-side benchmark (issue 3): rebuild rate against raw reading, end-to-end lag under load, as-of reads.

Run from the repository root against the local PostgreSQL (loopback, trust auth):

    PYTHONPATH=. python bench/projections.py                       # 1,000,000 events, ~6 minutes
    PYTHONPATH=. python bench/projections.py --events 100000 --lag-seconds 5   # quick look

Progress goes to stderr; the LAST line of stdout is one JSON object with the figures. The script
creates its own database `trafi_bench_<hex>` and drops it at the end, also on error or Ctrl-C.

What is measured, and how
-------------------------
1. The log: `--events` events of the order lifecycle (placed, paid, fulfilled, delivered: four per
   order), shaped like real checkouts (the lines and totals of one real checkout through the bus,
   fresh ids for each order), appended with the production recorder in chunks of 4,000.
2. `raw_read_events_per_s`: reading those notifications from position 0 to the head in batches of
   `--batch-size`, with the order list's topic filter, and nothing else — no decoding, no writes.
   `rebuild_events_per_s`: `projections.rebuild.rebuild()` of the order list (`rm_orders` and
   `rm_order_lines`), the same code path as `trafi projections rebuild order_list`: read, decode,
   apply every event, commit with the position per batch, swap. Measured side by side after one
   warm-up read (the first read of fresh rows writes their hint bits): raw, rebuild, raw;
   `rebuild_ratio` = rebuild / mean of the two raw runs.
3. Lag: the real worker process (`python -m api.cli projections run order_list`, woken by LISTEN/
   NOTIFY) keeps the order list current while `--clients` threads drive a steady, open-loop
   `--rate` commands/s for `--lag-seconds`: whole buyer journeys (create cart, 2 adds, identify,
   address, shipping method, checkout, pay) over the 3 + `--skus` products. A watcher polls the order list's tracking position
   every millisecond on its own connection. A command's lag is from the moment bus.execute()
   returned (committed) to the first poll that saw the projection at or past the command's
   position (its rows and that position commit together, so that is when a reader sees it).
4. As-of: a stock item with `--stock-events` events (snapshots every 100, as configured), then
   `--as-of-samples` reconstructions at random past timestamps through queries.audit.AuditService.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

if __package__ in (None, ""):  # `python bench/projections.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import add_products, bench_database, dsn_for, logger, make_app, pctl, r, sigterm_to_exit

REPO = Path(__file__).resolve().parent.parent
log = logger("projections")


# --------------------------------------------------------------------------- the log

def template_order(bus, shop):
    """Lines and totals of one real checkout: the shape every generated order copies."""
    from commands.checkout import Checkout
    from tests.factories import ready_cart

    order_id = bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 2, "BOOK-1": 1})), shop.ctx).data["order_id"]
    return bus.app.repository.get(UUID(order_id))


def append_order_lifecycles(app, template, events: int) -> None:
    from domain.order import Order

    chunk, written, started = [], 0, time.perf_counter()
    while written < events:
        order = Order(
            id=uuid4(), store_id=template.store_id, cart_id=uuid4(), customer_id=None, email=template.email,
            currency=template.currency, lines=template.lines, totals=template.totals, country=template.country,
            shipping_address=template.shipping_address, shipping_method=template.shipping_method,
            token_hash=template.token_hash,
        )
        order.mark_paid(amount=order.total, reference="pi_bench")
        order.fulfil({line["sku"]: line["quantity"] for line in order.lines}, carrier="DHL", tracking_number="1")
        order.mark_delivered()
        chunk += [app.mapper.to_stored_event(e) for e in order.collect_events()][: events - written]
        if len(chunk) >= 4000 or written + len(chunk) >= events:
            app.recorder.insert_events(chunk)
            written += len(chunk)
            chunk = []
            if written % 100_000 < 4000:
                log(f"appended {written:,} events ({written / (time.perf_counter() - started):,.0f}/s)")


# --------------------------------------------------------------------------- rebuild vs raw

def raw_read(app, topics, batch_size: int) -> tuple[int, float]:
    head = app.recorder.max_notification_id()
    position, read, started = 0, 0, time.perf_counter()
    while position < head:
        batch = app.recorder.select_notifications(start=position + 1, limit=batch_size, stop=head, topics=topics)
        read += len(batch)
        position = batch[-1].id if len(batch) == batch_size else head
    return read, time.perf_counter() - started


# --------------------------------------------------------------------------- lag

def buyer_journey(shop, rng):
    from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
    from commands.checkout import Checkout
    from commands.orders import MarkOrderPaid
    from tests.factories import ADDRESS_DE

    cart = yield CreateCart(currency="EUR")
    for sku in rng.sample(sorted(shop.products), 2):
        yield AddToCart(cart_id=cart["cart_id"], product_id=shop.products[sku], sku=sku, quantity=1)
    yield IdentifyBuyer(cart_id=cart["cart_id"], email=f"b{rng.randrange(10**9)}@example.com")
    yield SetShippingAddress(cart_id=cart["cart_id"], address=ADDRESS_DE)
    yield ChooseShippingMethod(cart_id=cart["cart_id"], rate_id="standard")
    order = yield Checkout(cart_id=cart["cart_id"])
    yield MarkOrderPaid(order_id=order["order_id"], amount=order["total"], reference="pi_bench")


def open_loop(bus, shop, rate: float, seconds: float, clients: int) -> tuple[list, list, float]:
    """`clients` threads issue buyer journeys on a fixed schedule of `rate` commands/s in all.
    Returns ([(position, committed_at)], errors, elapsed)."""
    committed, errors, lock = [], [], threading.Lock()
    begin = time.perf_counter() + 0.2
    per_client = rate / clients

    def client(index: int) -> None:
        rng, sent = random.Random(index), 0
        while True:
            journey, data = buyer_journey(shop, rng), None
            try:
                while True:
                    command = journey.send(data)
                    at = begin + sent / per_client  # open loop: the schedule does not wait for us
                    if at > begin + seconds:
                        return
                    time.sleep(max(0.0, at - time.perf_counter()))
                    try:
                        result = bus.execute(command, shop.ctx)
                    except Exception as error:  # noqa: BLE001 — counted and reported
                        errors.append(repr(error))
                        break
                    done = time.perf_counter()
                    sent += 1
                    if result.position is not None:
                        with lock:
                            committed.append((result.position, done))
                    data = result.data
            except StopIteration:
                pass

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return committed, errors, time.perf_counter() - begin


class PositionWatcher(threading.Thread):
    """Polls the projection's tracking position; remembers when each new position was first seen."""

    def __init__(self, dsn: str, name: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.name_ = name
        self.seen: list[tuple[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = -1
        while not self.stop.is_set():
            row = self.conn.execute(
                "SELECT position FROM trafi_projection_positions WHERE name = %s", (self.name_,)
            ).fetchone()
            if row and row[0] > last:
                last = row[0]
                self.seen.append((last, time.perf_counter()))
            time.sleep(0.001)

    def visible_at(self, position: int) -> float | None:
        for seen_position, at in self.seen:  # (short list: one entry per committed batch)
            if seen_position >= position:
                return at
        return None


def measure_lag(app, bus, shop, db: str, rate: float, seconds: float, clients: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRAFI_EVENT_STORE": "postgres",
           "TRAFI_POSTGRES_DSN": dsn_for(db), "TRAFI_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "projections", "run", "order_list"], env=env, cwd=REPO)
    watcher = PositionWatcher(dsn_for(db), "order_list")
    try:
        head = app.recorder.max_notification_id()
        deadline = time.monotonic() + 600
        while watcher.conn.execute(
            "SELECT coalesce(max(position), 0) FROM trafi_projection_positions WHERE name = 'order_list'"
        ).fetchone()[0] < head:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not catch up before the load phase")
            time.sleep(0.1)
        watcher.start()
        committed, errors, elapsed = open_loop(bus, shop, rate, seconds, clients)
        time.sleep(1.0)  # let the last batches land
        watcher.stop.set()
        watcher.join()
        lags = []
        for position, at in committed:
            visible = watcher.visible_at(position)
            lags.append((visible - at) * 1000 if visible is not None else float("inf"))
        return {
            "load_commands_per_s": r(len(committed) / elapsed, 1), "lag_commands": len(committed),
            "lag_p50_ms": r(max(0.0, pctl(lags, 50))), "lag_p95_ms": r(max(0.0, pctl(lags, 95))),
            "lag_max_ms": r(max(lags)), "lag_never_visible": sum(1 for lag in lags if lag == float("inf")),
            "load_errors": len(errors), "load_error_sample": errors[:3],
        }
    finally:
        watcher.stop.set()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        watcher.conn.close()


# --------------------------------------------------------------------------- as-of

def measure_as_of(app, bus, shop, stock_events: int, samples: int) -> dict:
    from domain import ids
    from domain.stock import StockItem
    from queries.audit import AuditService

    item: StockItem = app.repository.get(ids.stock_item_id(shop.ctx.store_id, "TEE-M"))
    started = time.perf_counter()
    while item.version < stock_events:
        for _ in range(min(1000, stock_events - item.version)):
            item.receive(1)
        app.save(item)  # takes a snapshot at every 100th version on the way
    log(f"stock item with {item.version:,} events written in {time.perf_counter() - started:.1f} s")
    first = app.repository.get(item.id, version=1).modified_on
    last = item.modified_on
    span = (last - first).total_seconds()
    audit = AuditService(app)
    rng = random.Random(5)
    timings = []
    for _ in range(samples):
        as_of = first + timedelta(seconds=rng.uniform(0, span))
        t0 = time.perf_counter()
        audit.state_at(item.id, as_of=as_of)
        timings.append((time.perf_counter() - t0) * 1000)
    return {"as_of_events_in_stream": item.version, "as_of_samples": samples,
            "as_of_p50_ms": r(pctl(timings, 50)), "as_of_p95_ms": r(pctl(timings, 95)), "as_of_max_ms": r(max(timings))}


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="commands per second in the lag phase")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skus", type=int, default=200, help="extra products the buyer journeys choose from")
    parser.add_argument("--stock-events", type=int, default=20_000)
    parser.add_argument("--as-of-samples", type=int, default=200)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, sigterm_to_exit)

    from commands.bus import CommandBus
    from projections.read_models.orders import OrderList
    from projections.rebuild import rebuild
    from projections.views import ViewStore
    from tests.factories import seed_small_store

    with bench_database(log) as db:
        app = make_app(db, pool_size=args.clients + 4)
        views = ViewStore(app.config)
        try:
            bus = CommandBus(app)
            shop = seed_small_store(bus, stock=10**7)
            add_products(bus, shop, args.skus, stock=10**7)  # journeys spread over a real catalogue
            append_order_lifecycles(app, template_order(bus, shop), args.events)
            events = app.recorder.max_notification_id()
            projection = OrderList()
            # The first read of freshly written rows sets their hint bits (writes pages):
            # neither contender should pay for that, so it happens before both.
            warm = raw_read(app, projection.topics, args.batch_size)
            log(f"warm-up read: {warm[0]:,} events in {warm[1]:.1f} s")
            raw1 = raw_read(app, projection.topics, args.batch_size)
            log(f"raw read: {raw1[0]:,} events in {raw1[1]:.1f} s")
            result = rebuild(app, views, projection, batch_size=args.batch_size)
            log(f"rebuild: {result.events_applied:,} events in {result.seconds:.1f} s")
            raw2 = raw_read(app, projection.topics, args.batch_size)
            raw_rate = (raw1[0] + raw2[0]) / (raw1[1] + raw2[1])
            figures = {
                "events": events, "projection": projection.name, "batch_size": args.batch_size,
                "rebuild_events_applied": result.events_applied,
                "rebuild_events_per_s": r(result.events_per_second, 0),
                "raw_read_events_per_s": r(raw_rate, 0),
                "rebuild_ratio": r(result.events_per_second / raw_rate, 3),
            }
            log(json.dumps(figures))
            figures.update(measure_lag(app, bus, shop, db, args.rate, args.lag_seconds, args.clients))
            log(json.dumps(figures))
            if args.as_of_samples:
                figures.update(measure_as_of(app, bus, shop, args.stock_events, args.as_of_samples))
        finally:
            views.close()
            app.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
