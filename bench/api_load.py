"""HTTP load: add-to-cart and checkout through the real API, against a no-op route of the same app.

    PYTHONPATH=. python bench/api_load.py            # about 2 minutes
    PYTHONPATH=. python bench/api_load.py --help

What runs (all on loopback, every loop bounded in count and time):
  1. a fresh PostgreSQL database; a store, 200 products with ample stock, and carts prepared
     through the command bus (carts for add-to-cart, ready-to-pay carts for checkout);
  2. the app under uvicorn (`--workers`, httptools, uvloop) with embedded projections off,
     plus one `trafi projections run` process keeping the read models current — the
     deployment shape of compose.yaml;
  3. a closed-loop load generator in its own process (asyncio + aiohttp, keep-alive):
     rounds of GET /v1/noop and POST /v1/carts/{id}/lines, alternating, `--clients` each,
     then `--checkout-clients` clients each checking out its own ready carts.

Prints one JSON line: rates are medians over the rounds, latencies are over every request
of every round; `ratio_to_noop` = add_to_cart_rps / noop_rps of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from uuid import UUID

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import bench_database, dsn_for, logger, pctl, r, sigterm_to_exit  # noqa: E402

log = logger("api_load")
SECRET = b"bench-secret-key"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the load generator (runs in its own process) ------------------------------------------

def _mark(edge: str, phase: str = "") -> None:
    """Tell the parent a phase starts or ends, so it can read every process's CPU time there."""
    print(json.dumps({"edge": edge, "phase": phase}), file=sys.stderr, flush=True)


async def _closed_loop(session, clients: int, seconds: float, max_requests: int, make_request, phase: str = "warmup"):
    """`clients` workers, each sending its next request when the previous one is answered."""
    _mark("start", phase)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    sent = 0

    async def client(index: int):
        nonlocal sent
        n = 0
        while time.perf_counter() < deadline and sent < max_requests:
            request = make_request(index, n)
            if request is None:
                return
            sent += 1
            n += 1
            method, url, body, headers = request
            started = time.perf_counter()
            try:
                async with session.request(method, url, json=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except Exception:  # a refused or broken connection is an error, not a crash
                status = 599
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    _mark("end")
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "latencies_ms": [x * 1000 for x in latencies], "statuses": statuses}


async def _generate(spec: dict) -> dict:
    import aiohttp

    base = spec["base_url"]
    auth = {"Authorization": f"Bearer {spec['publishable_key']}"}
    skus = spec["skus"]
    out: dict = {"noop": [], "add_to_cart": [], "checkout": None}
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm-up: connections, imports and caches on both sides.
        await _closed_loop(session, spec["clients"], 1.0, 2000, lambda i, n: ("GET", f"{base}/v1/noop", None, None))

        carts = spec["cart_ids"]
        per_client = len(carts) // spec["clients"]
        cursor = [0] * spec["clients"]

        def add_to_cart(i: int, n: int):
            slot = cursor[i] // spec["adds_per_cart"]
            if slot >= per_client:
                return None  # out of prepared carts: this client is done
            cart = carts[i * per_client + slot]
            product_id, sku = skus[(i * 7 + cursor[i]) % len(skus)]
            cursor[i] += 1
            return ("POST", f"{base}/v1/carts/{cart}/lines",
                    {"product_id": product_id, "sku": sku, "quantity": 1}, auth)

        for _ in range(spec["rounds"]):
            out["noop"].append(await _closed_loop(
                session, spec["clients"], spec["seconds"], spec["max_requests"],
                lambda i, n: ("GET", f"{base}/v1/noop", None, None), "noop"))
            out["add_to_cart"].append(await _closed_loop(
                session, spec["clients"], spec["seconds"], spec["max_requests"], add_to_cart, "add_to_cart"))

        ready = spec["ready_carts"]
        per_checkout_client = len(ready) // spec["checkout_clients"]

        def checkout(i: int, n: int):
            if n >= per_checkout_client:
                return None
            cart = ready[i * per_checkout_client + n]
            return ("POST", f"{base}/v1/carts/{cart}/checkout", {}, auth)

        out["checkout"] = await _closed_loop(
            session, spec["checkout_clients"], spec["checkout_seconds"], len(ready), checkout, "checkout")
    return out


def run_generator(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    # To a file: a large line on a pipe can be cut short once uvloop has made stdout non-blocking.
    result = asyncio.run(_generate(spec))
    with open(spec["out"], "w") as f:
        json.dump(result, f)


# --- setup: data, server, projections ------------------------------------------------------

def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children (threads included)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    seen = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
        except OSError:
            continue
    return total


def _postgres_pids() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if open(f"/proc/{entry}/comm").read().strip() == "postgres":
                    found.append(int(entry))
            except OSError:
                pass
    return found


class CpuMeter:
    """CPU seconds spent per phase by the server, the projection worker, PostgreSQL and the generator."""

    def __init__(self, processes: dict[str, int]):
        self.processes = processes
        self.phases: dict[str, dict[str, float]] = {}
        self._start: dict[str, float] = {}

    def snapshot(self) -> dict[str, float]:
        snap = {name: _cpu_seconds([pid]) for name, pid in self.processes.items() if pid}
        snap["postgres"] = _cpu_seconds(_postgres_pids())
        snap["wall"] = time.monotonic()
        return snap

    def on_mark(self, line: str) -> None:
        try:
            mark = json.loads(line)
        except ValueError:
            return
        if mark.get("edge") == "start":
            self._phase, self._start = mark["phase"], self.snapshot()
        elif mark.get("edge") == "end" and self._start:
            end = self.snapshot()
            totals = self.phases.setdefault(self._phase, {})
            for name, value in end.items():
                totals[name] = totals.get(name, 0.0) + value - self._start[name]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(db: str, args) -> dict:
    from api.bootstrap import bootstrap_store
    from commands.bus import CommandBus
    from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
    from commands.catalog import AddVariant, ChangeProductStatus, CreateProduct
    from commands.context import StoreContext
    from commands.stock import ReceiveStock
    from commands.store import SetShippingZones
    from bench.common import make_app

    app = make_app(db, pool_size=4)
    bus = CommandBus(app)
    store = bootstrap_store(bus, SECRET, slug="bench", name="Bench", owner_email="owner@bench.example",
                            owner_password="correct horse battery")
    ctx = StoreContext(store.store_id, actor="bench")
    bus.execute(SetShippingZones(zones=[{"id": "de", "name": "Germany", "countries": ["DE"], "rates": [
        {"id": "standard", "name": "Standard", "kind": "flat", "amount": 495}]}]), ctx)
    skus = []
    for i in range(args.products):
        pid = UUID(bus.execute(CreateProduct(handle=f"p-{i}", title=f"Product {i}"), ctx).data["product_id"])
        bus.execute(AddVariant(product_id=pid, sku=f"SKU-{i}", price=1000 + i, unit_cost=500, weight_grams=300,
                               tax_class="standard"), ctx)
        bus.execute(ChangeProductStatus(product_id=pid, status="active"), ctx)
        bus.execute(ReceiveStock(sku=f"SKU-{i}", quantity=1_000_000), ctx)
        skus.append((str(pid), f"SKU-{i}"))
    log(f"catalogue: {len(skus)} products")
    carts_needed = args.clients * (args.max_requests // args.clients // args.adds_per_cart + 1)
    cart_ids = [bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"] for _ in range(carts_needed)]
    log(f"add-to-cart: {len(cart_ids)} empty carts")
    ready = []
    address = {"country": "DE", "name": "Bench Buyer", "line1": "Street 1", "city": "Berlin", "postal_code": "10115"}
    for n in range(args.checkout_clients * args.checkouts_per_client):
        cart_id = UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"])
        for k in range(1 + n % 2):
            pid, sku = skus[(n * 13 + k) % len(skus)]
            bus.execute(AddToCart(cart_id=cart_id, product_id=UUID(pid), sku=sku, quantity=1), ctx)
        bus.execute(IdentifyBuyer(cart_id=cart_id, email=f"buyer{n}@bench.example"), ctx)
        bus.execute(SetShippingAddress(cart_id=cart_id, address=address), ctx)
        bus.execute(ChooseShippingMethod(cart_id=cart_id, rate_id="standard"), ctx)
        ready.append(str(cart_id))
    log(f"checkout: {len(ready)} ready carts")
    app.close()
    return {"publishable_key": store.publishable_key, "skus": skus, "cart_ids": cart_ids, "ready_carts": ready}


def _server_env(db: str, args) -> dict:
    return {
        **os.environ, "PYTHONPATH": ROOT, "TRAFI_EVENT_STORE": "postgres", "TRAFI_POSTGRES_DSN": dsn_for(db),
        "TRAFI_POOL_SIZE": str(args.pool_size), "TRAFI_SECRET_KEY": SECRET.decode(),
        "TRAFI_RATE_STOREFRONT": "1000000/1000000", "TRAFI_RATE_ADMIN": "1000000/1000000",
        "TRAFI_EMBEDDED_PROJECTIONS": "0", "TRAFI_LOG_LEVEL": "WARNING",
    }


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _count_statuses(runs: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in runs:
        for status, n in run["statuses"].items():
            counts[str(status)] = counts.get(str(status), 0) + n
    return counts


def _cpu_per_request(meter: CpuMeter, phase: str, requests: int) -> dict:
    """Milliseconds of CPU each process spent per request of a phase, and how busy the 2 cores were."""
    spent = meter.phases.get(phase)
    if not spent or not requests:
        return {}
    wall = spent.pop("wall")
    per = {f"{name}_cpu_ms": r(seconds * 1000 / requests, 3) for name, seconds in spent.items()}
    per["cores_busy"] = r(sum(spent.values()) / wall, 2)
    return per


def _summary(result: dict, args, meter: CpuMeter) -> dict:
    def latencies(runs):
        return [x for run in runs for x in run["latencies_ms"]]

    def errors(runs):
        return sum(n for run in runs for status, n in run["statuses"].items() if int(status) >= 400)

    noop = statistics.median(run["rps"] for run in result["noop"])
    add = statistics.median(run["rps"] for run in result["add_to_cart"])
    add_ms = latencies(result["add_to_cart"])
    checkout = result["checkout"]
    checkout_ms = checkout["latencies_ms"]
    return {
        "clients": args.clients, "workers": args.workers,
        "noop_rps": r(noop, 1), "noop_rounds_rps": [r(run["rps"], 1) for run in result["noop"]],
        "add_to_cart_rps": r(add, 1), "add_to_cart_rounds_rps": [r(run["rps"], 1) for run in result["add_to_cart"]],
        "add_to_cart_p50_ms": r(pctl(add_ms, 50)), "add_to_cart_p95_ms": r(pctl(add_ms, 95)),
        "add_to_cart_p99_ms": r(pctl(add_ms, 99)), "add_to_cart_requests": len(add_ms),
        "checkout_clients": args.checkout_clients, "checkouts": len(checkout_ms),
        "checkout_rps": r(checkout["rps"], 1),
        "checkout_p50_ms": r(pctl(checkout_ms, 50)), "checkout_p95_ms": r(pctl(checkout_ms, 95)),
        "checkout_p99_ms": r(pctl(checkout_ms, 99)),
        "errors": errors(result["noop"]) + errors(result["add_to_cart"]) + errors([checkout]),
        "statuses": _count_statuses([*result["noop"], *result["add_to_cart"], checkout]),
        "ratio_to_noop": r(add / noop, 3),
        "cpu_per_request": {
            phase: _cpu_per_request(meter, phase, sum(run["requests"] for run in runs))
            for phase, runs in (("noop", result["noop"]), ("add_to_cart", result["add_to_cart"]),
                                ("checkout", [checkout]))
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--checkout-clients", type=int, default=100)
    parser.add_argument("--checkouts-per-client", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each noop / add-to-cart round")
    parser.add_argument("--checkout-seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=20_000, help="per round")
    parser.add_argument("--adds-per-cart", type=int, default=10)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--pool-size", type=int, default=16, help="PostgreSQL connections per worker")
    parser.add_argument("--no-projections", action="store_true", help="do not run a projection worker beside")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        run_generator(args.generate)
        return 0

    signal.signal(signal.SIGTERM, sigterm_to_exit)
    server = projections = None
    with bench_database(log) as db:
        try:
            data = _prepare(db, args)
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            env = _server_env(db, args)
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", str(args.workers), "--http", "httptools", "--loop", "uvloop",
                 "--no-access-log", "--log-level", "warning", "--backlog", "2048"],
                env=env, cwd=ROOT,
            )
            if not args.no_projections:
                projections = subprocess.Popen([sys.executable, "-m", "api.cli", "projections", "run"], env=env,
                                               cwd=ROOT, stdout=subprocess.DEVNULL)
            _wait_healthy(base, server)
            log(f"server up on {base} ({args.workers} workers)")
            spec_path = os.path.join("/tmp", f"api_load_{os.getpid()}.json")
            out_path = os.path.join("/tmp", f"api_load_{os.getpid()}.out.json")
            with open(spec_path, "w") as f:
                json.dump({**data, "out": out_path, "base_url": base, "clients": args.clients, "rounds": args.rounds,
                           "seconds": args.seconds, "max_requests": args.max_requests,
                           "adds_per_cart": args.adds_per_cart, "checkout_clients": args.checkout_clients,
                           "checkout_seconds": args.checkout_seconds}, f)
            generator = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--generate", spec_path], stderr=subprocess.PIPE,
                text=True, cwd=ROOT,
            )
            meter = CpuMeter({"server": server.pid, "projections": projections.pid if projections else 0,
                              "generator": generator.pid})
            for line in generator.stderr:
                meter.on_mark(line)
            generator.wait(timeout=args.rounds * 2 * (args.seconds + 5) + args.checkout_seconds + 60)
            os.unlink(spec_path)
            if generator.returncode != 0:
                return 1
            with open(out_path) as f:
                result = json.load(f)
            os.unlink(out_path)
            summary = _summary(result, args, meter)
        finally:
            _stop(projections)
            _stop(server)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
