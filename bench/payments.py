"""Payments: signed Stripe webhooks in through the real API, outbound webhooks out, on PostgreSQL.

    PYTHONPATH=. python bench/payments.py            # about a minute
    PYTHONPATH=. python bench/payments.py --help

What runs (loopback only, every loop bounded in count and time):
  1. a fresh PostgreSQL database; a store and `--orders` orders, each with a Stripe payment
     attempt recorded (as the storefront's start-payment would);
  2. the app under uvicorn (`--workers`) with embedded projections off;
  3. in this process, a closed loop of `--clients` aiohttp clients: first rounds of the
     no-op route `GET /v1/noop` (the baseline), then every order's `payment_intent.succeeded`,
     signed with `stripe.WebhookSignature` — each event delivered twice (a duplicate), in
     shuffled order;
  4. afterwards, counts the `Paid` events per order in the log: a duplicate applied would
     show as a second one;
  5. outbound: one endpoint subscribed to `trafi.order.paid.v1` on a local receiver; the
     outbound projection enqueues one delivery per paid order and the deliverer
     (projections/webhooks/deliverer.py) sends them, timed until all are delivered.

Prints one JSON line; `ratio_to_noop` = webhooks_per_s / noop_rps of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID, uuid4

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.api_load import _free_port, _server_env, _stop, _wait_healthy  # noqa: E402
from bench.common import bench_database, dsn_for, logger, make_app, pctl, r, sigterm_to_exit  # noqa: E402

log = logger("payments")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEBHOOK_SECRET = "whsec_bench"


def _prepare(db: str, orders: int, receiver_url: str) -> dict:
    """A store with `orders` orders, each with a Stripe intent recorded, straight through the bus,
    and a webhook endpoint subscribed to payments (it receives events recorded after it exists)."""
    from api.bootstrap import bootstrap_store
    from bench.api_load import SECRET
    from commands.bus import CommandBus
    from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
    from commands.checkout import Checkout
    from commands.context import StoreContext
    from commands.payments.records import RecordPaymentAttempt
    from commands.webhooks import CreateWebhookEndpoint
    from tests.factories import ADDRESS_DE, fill_store

    app = make_app(db, pool_size=4)
    bus = CommandBus(app)
    store = bootstrap_store(bus, SECRET, slug="bench-pay", name="Bench", owner_email="o@bench.example",
                            owner_password="bench-password-1")
    ctx = StoreContext(store.store_id, actor="bench")
    shop = fill_store(bus, ctx, stock=orders * 2)
    bus.execute(CreateWebhookEndpoint(endpoint_id=uuid4(), url=receiver_url, event_types=["trafi.order.paid.v1"]), ctx)
    intents = []
    for n in range(orders):
        cart_id = UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"])
        bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=1), ctx)
        bus.execute(IdentifyBuyer(cart_id=cart_id, email=f"b{n}@bench.example"), ctx)
        bus.execute(SetShippingAddress(cart_id=cart_id, address=ADDRESS_DE), ctx)
        bus.execute(ChooseShippingMethod(cart_id=cart_id, rate_id="standard"), ctx)
        placed = bus.execute(Checkout(cart_id=cart_id), ctx).data
        intent_id = f"pi_bench{n:06d}"
        bus.execute(RecordPaymentAttempt(order_id=UUID(placed["order_id"]), attempt=1, provider="stripe",
                                         intent_id=intent_id, status="requires_payment_method", at=1), ctx)
        intents.append({"order_id": placed["order_id"], "intent_id": intent_id, "total": placed["total"]})
    log(f"{orders} orders awaiting payment")
    app.close()
    return {"store_id": str(store.store_id), "publishable_key": store.publishable_key, "intents": intents}


def _signed_events(intents: list[dict]) -> list[tuple[str, str]]:
    import stripe

    events = []
    for n, intent in enumerate(intents):
        body = json.dumps({
            "id": f"evt_bench{n:06d}", "object": "event", "type": "payment_intent.succeeded", "created": 1_763_700_000,
            "data": {"object": {"id": intent["intent_id"], "object": "payment_intent", "status": "succeeded",
                                "amount": intent["total"], "amount_received": intent["total"], "currency": "eur",
                                "metadata": {"trafi_order_id": intent["order_id"], "trafi_attempt": "1"}}},
        })
        events.append((body, stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)))
    return events


async def _closed_loop(clients: int, seconds: float, requests: list, send) -> dict:
    """`clients` workers take the next request when their previous one is answered."""
    latencies, statuses = [], {}
    queue = list(reversed(requests))
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def client():
        while queue and time.perf_counter() < deadline:
            request = queue.pop()
            t0 = time.perf_counter()
            status = await send(request)
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "latencies": latencies, "statuses": statuses}


async def _load(base: str, data: dict, args) -> dict:
    import aiohttp

    events = _signed_events(data["intents"])
    deliveries = events * 2  # every event twice: the second must be recognised, not applied
    random.Random(7).shuffle(deliveries)
    url = f"{base}/webhooks/stripe/{data['store_id']}"
    noop_headers = {"Authorization": f"Bearer {data['publishable_key']}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.clients)) as session:
        async def noop(_):
            async with session.get(f"{base}/v1/noop", headers=noop_headers) as response:
                await response.read()
                return response.status

        async def webhook(delivery):
            body, signature = delivery
            async with session.post(url, data=body, headers={"Stripe-Signature": signature,
                                                              "Content-Type": "application/json"}) as response:
                await response.read()
                return response.status

        await _closed_loop(args.clients, 2, [None] * 500, noop)  # warm-up
        noop_runs = [await _closed_loop(args.clients, args.seconds, [None] * 20_000, noop) for _ in range(3)]
        hooks = await _closed_loop(args.clients, args.seconds * 10, deliveries, webhook)
    return {"noop_rps": sorted(run["rps"] for run in noop_runs)[1], "webhooks": hooks,
            "noop_p95": pctl([x for run in noop_runs for x in run["latencies"]], 95)}


def _duplicates_applied(db: str, data: dict) -> tuple[int, int]:
    """(orders paid, Paid events beyond the first per order) — read from the log itself."""
    import psycopg

    with psycopg.connect(dsn_for(db)) as conn:
        rows = conn.execute("SELECT originator_id, count(*) FROM trafi_events WHERE topic = 'trafi.order.paid.v1' "
                            "GROUP BY originator_id").fetchall()
    return len(rows), sum(count - 1 for _, count in rows)


# --- outbound ------------------------------------------------------------------------------------
class _Receiver:
    """A local endpoint that answers 200 and counts deliveries by event id."""

    def __init__(self):
        received = self.received = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    event_id = self.headers.get("Trafi-Event-Id")
                    received[event_id] = received.get(event_id, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _outbound(db: str, data: dict, args, receiver: _Receiver) -> dict:
    from bench.api_load import SECRET
    from projections.runner import ProjectionRunner
    from projections.views import ViewStore
    from projections.webhooks.deliverer import DeliveryOptions, WebhookDeliverer
    from projections.webhooks.projection import OutboundWebhooks

    app = make_app(db, pool_size=args.concurrency + 4)
    views = ViewStore(app.config)
    ProjectionRunner(app, views, OutboundWebhooks()).catch_up()  # one delivery per paid order, enqueued
    deliverer = WebhookDeliverer(views, DeliveryOptions(secret_key=SECRET, allow_private=True, timeout_s=10,
                                                        concurrency=args.concurrency, backoff_scale=0.001))
    expected = len(data["intents"])
    started = time.perf_counter()
    deadline = started + 120
    while len(receiver.received) < expected and time.perf_counter() < deadline:
        if deliverer.run_once() == 0:
            time.sleep(0.01)
    elapsed = time.perf_counter() - started
    deliverer.close()
    receiver.server.shutdown()
    views.close()
    app.close()
    return {"delivered": len(receiver.received), "per_s": len(receiver.received) / elapsed,
            "twice": sum(1 for n in receiver.received.values() if n > 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000, help="orders, i.e. distinct webhook events")
    parser.add_argument("--clients", type=int, default=8, help="concurrent webhook senders (closed loop)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seconds", type=float, default=5, help="length of a no-op round")
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8, help="outbound deliveries in flight")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, sigterm_to_exit)
    server = None
    with bench_database(log) as db:
        try:
            receiver = _Receiver()
            data = _prepare(db, args.orders, receiver.url)
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            env = {**_server_env(db, args), "TRAFI_PAYMENT_PROVIDER": "stripe",
                   "TRAFI_STRIPE_SECRET_KEY": "sk_test_bench", "TRAFI_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", str(args.workers), "--http", "httptools", "--loop", "uvloop",
                 "--no-access-log", "--log-level", "warning"], env=env, cwd=ROOT,
            )
            _wait_healthy(base, server)
            log(f"server up on {base} ({args.workers} workers)")
            load = asyncio.run(_load(base, data, args))
            _stop(server)
            server = None
            paid, duplicates = _duplicates_applied(db, data)
            outbound = _outbound(db, data, args, receiver)
        finally:
            _stop(server)
    hooks = load["webhooks"]
    summary = {
        "orders": args.orders, "clients": args.clients, "webhooks_sent": len(hooks["latencies"]),
        "noop_rps": r(load["noop_rps"], 1), "webhooks_per_s": r(hooks["rps"], 1),
        "webhook_p50_ms": r(pctl(hooks["latencies"], 50)), "webhook_p95_ms": r(pctl(hooks["latencies"], 95)),
        "webhook_p99_ms": r(pctl(hooks["latencies"], 99)),
        "statuses": {str(k): v for k, v in hooks["statuses"].items()},
        "orders_paid": paid, "duplicate_deliveries_applied": duplicates,
        "outbound_deliveries": outbound["delivered"], "outbound_deliveries_per_s": r(outbound["per_s"], 1),
        "outbound_delivered_twice": outbound["twice"],
        "ratio_to_noop": r(hooks["rps"] / load["noop_rps"], 3),
    }
    print(json.dumps(summary))
    return 0 if duplicates == 0 and paid == args.orders else 1


if __name__ == "__main__":
    sys.exit(main())
