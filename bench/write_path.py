"""Write-path benchmark (issue 2): add-to-cart rate, checkout latency under concurrency, SQL per command.

Run from the repository root against the local PostgreSQL (loopback, trust auth):

    PYTHONPATH=. python bench/write_path.py            # defaults finish in well under 3 minutes
    PYTHONPATH=. python bench/write_path.py --seconds 1 --rounds 1 --checkouts 256   # quick look

Progress goes to stderr; the LAST line of stdout is one JSON object with the figures.
The script creates its own database `trafi_bench_<hex>` and drops it WITH (FORCE) at the end,
also on error, Ctrl-C or SIGTERM.

What is measured, and how
-------------------------
1. `raw_commit_per_s` vs `add_to_cart_per_s` (measured side by side, interleaved):
   `--rounds` rounds of each, alternating raw, add-to-cart, raw, add-to-cart, ... `--seconds` each.
   * raw: a plain psycopg loop on ONE connection (default non-autocommit mode, so psycopg sends
     BEGIN, the INSERT, COMMIT): one row (uuid, bigint, text topic, 300 random bytes of bytea) into
     a table shaped like the event table (same columns, same primary key, same unique index on a
     bigserial), then COMMIT. Same server, same fsync settings.
   * add-to-cart: one client calling `bus.execute(AddToCart(...))` sequentially on a seeded store.
     Carts are created beforehand, outside the clock (the clock is paused while a new batch of carts
     is created). Each cart gets `--adds-per-cart` adds (distinct SKUs, quantity 1), far below the
     cart's limits (100 lines, 999 per line).
   Each figure is the median of its rounds; `ratio` = add_to_cart_per_s / raw_commit_per_s.

2. Checkout latency at `--concurrency` (32) concurrent clients: threads in this process, each with
   its own list of ready carts (prepared beforehand: lines, buyer with a unique e-mail, German
   address, standard shipping), all started together by a barrier, each calling
   `bus.execute(Checkout(...))` back to back (closed loop, no think time). Stock is plenty
   (3 × checkouts + 1000 per SKU), so `stock.insufficient` should not happen; if it does it is
   counted as `expected_stock_conflicts`. Any other exception (e.g. `command.conflict` after the
   bus's 30 attempts) counts in `checkout_errors`. p50/p95 are over the wall time of each
   successful checkout (including the bus's internal retries). Bounded by `--checkouts` and
   `--checkout-timeout`.
   Application mode: ONE TrafiApplication with pool_size = concurrency (32) shared by all threads
   (the default). `--app-per-thread` gives every thread its own TrafiApplication(pool_size=1)
   instead. Measured side by side on this machine (2 cores, 1024 checkouts spread over 403 SKUs):
   shared 292 checkouts/s, p95 197 ms; one per thread 222/s, p95 278 ms (and no better on the
   3 hot SKUs) — so the shared application is the default.
   The store is tests.factories.seed_small_store (3 SKUs) plus `--extra-skus` (default 200) more,
   and carts spread over all of them, as in a real catalogue. `--extra-skus 0` is the flash-sale
   case: every checkout contends for the same 3 stock items (reported separately in
   docs/performance.md). If the phase hits `--checkout-timeout` before all `--checkouts` ran,
   `checkout_timed_out` says so and `checkouts` is the number actually attempted.

3. SQL statements per command, counted exactly on the wire: a separate TrafiApplication with
   pool_size=1 (the library's pool may still open a second connection) is built while
   `PostgresDatastore.after_connect_func` is wrapped so that EVERY connection of its pool gets
   libpq tracing from its first message (`pgconn.trace(fd)` into its own temp file, flags
   SUPPRESS_TIMESTAMPS | REGRESS_MODE). Tracing is paused (`untrace()`, which flushes) around a
   measurement window; in the window we count frontend `Query` (simple protocol) and `Execute`
   (extended protocol, also used for BEGIN/COMMIT in pipeline mode) messages across all connections.
   `Sync`/`Flush`/`Parse`/`Bind`/`Describe` are protocol steps, not statements. Every Execute is
   attributed to the statement text of the Parse it was bound to (named prepared statements are
   parsed once per connection, possibly before the window, hence tracing from birth), and the
   breakdown per statement kind is reported as well. The window covers `--stmt-adds` sequential
   add-to-carts and `--stmt-checkouts` sequential checkouts (no contention, so no retries);
   reported values are averages per command.

`--profile DIR` additionally runs cProfile in the add-to-cart rounds and in every checkout thread
and writes pstats files + a text summary there (timings are then not comparable; the JSON says so).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from uuid import UUID, uuid4

if __package__ in (None, ""):  # `python bench/write_path.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import pq

from bench.common import add_products, bench_database, dsn_for, logger, make_app, pctl, r, sigterm_to_exit

SKUS = ("MUG-1", "BOOK-1", "TEE-M")  # what tests.factories.seed_small_store creates
RAW_PAYLOAD_BYTES = 300


log = logger("write_path")


# --------------------------------------------------------------------------- application helpers

def ready_carts(bus, shop, specs: list[tuple[dict[str, int], str]], workers: int) -> list[UUID]:
    """Prepare ready-to-checkout carts with a few threads (not timed)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.factories import ready_cart

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda spec: ready_cart(bus, shop, spec[0], email=spec[1]), specs))


# --------------------------------------------------------------------------- 1. raw vs add-to-cart

RAW_DDL = (
    "CREATE TABLE bench_raw (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
    "topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))",
    "CREATE UNIQUE INDEX bench_raw_notification_id_idx ON bench_raw (notification_id ASC)",
)
RAW_INSERT = "INSERT INTO bench_raw (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"


def raw_round(conn: psycopg.Connection, seconds: float, max_ops: int) -> float:
    payload = os.urandom(RAW_PAYLOAD_BYTES)
    topic = "trafi.cart.item_added.v1"
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while n < max_ops:
        conn.execute(RAW_INSERT, (uuid4(), 1, topic, payload))
        conn.commit()
        n += 1
        if time.perf_counter() >= deadline:
            break
    return n / (time.perf_counter() - t0)


def add_to_cart_round(bus, shop, seconds: float, adds_per_cart: int, max_ops: int, batch_carts: int = 100) -> tuple[float, int]:
    from commands.cart import AddToCart, CreateCart

    ctx = shop.ctx
    skus = SKUS[:adds_per_cart] if adds_per_cart <= len(SKUS) else SKUS
    elapsed = 0.0
    n = 0
    while elapsed < seconds and n < max_ops:
        # Fresh carts, outside the clock.
        carts = [UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"]) for _ in range(batch_carts)]
        ops = []
        for cart_id in carts:
            for i in range(adds_per_cart):
                sku = skus[i % len(skus)]
                ops.append(AddToCart(cart_id=cart_id, product_id=shop.products[sku], sku=sku, quantity=1))
        t0 = time.perf_counter()
        for op in ops:
            bus.execute(op, ctx)
            n += 1
            if n >= max_ops or elapsed + (time.perf_counter() - t0) >= seconds:
                break
        elapsed += time.perf_counter() - t0
    return n / elapsed, n


# --------------------------------------------------------------------------- 2. concurrent checkouts

def checkout_phase(args, db: str, shared_app, profile_dir: Path | None) -> dict:
    from commands.bus import CommandBus
    from commands.checkout import Checkout
    from domain.errors import DomainError
    from tests.factories import seed_small_store

    conc = args.concurrency
    n = args.checkouts
    bus = CommandBus(shared_app)
    shop = seed_small_store(bus, stock=3 * n + 1000)
    all_skus = list(SKUS) + add_products(bus, shop, args.extra_skus, stock=3 * n + 1000)
    rng = random.Random(20240602)
    specs = []
    for i in range(n):
        skus = rng.sample(all_skus, rng.choice((1, 2)))
        specs.append(({sku: rng.randint(1, 3) for sku in skus}, f"buyer{i}@bench.example"))
    n_single = args.single_checkouts
    for i in range(n_single):
        specs.append(({SKUS[i % 3]: 1}, f"single{i}@bench.example"))
    log(f"preparing {len(specs)} ready carts with {args.prep_workers} threads ...")
    t = time.perf_counter()
    carts = ready_carts(bus, shop, specs, args.prep_workers)
    log(f"  prepared in {time.perf_counter() - t:.1f} s")
    carts, single_carts = carts[:n], carts[n:]
    per_thread = [carts[i::conc] for i in range(conc)]

    # Baseline in the same run: the same command from ONE client, sequentially (no contention).
    single_ms = []
    for cart_id in single_carts:
        t0 = time.perf_counter()
        bus.execute(Checkout(cart_id=cart_id), shop.ctx)
        single_ms.append((time.perf_counter() - t0) * 1000)

    if args.app_per_thread:
        apps = [make_app(db, 1) for _ in range(conc)]
        buses = [CommandBus(a) for a in apps]
        mode = "one TrafiApplication(pool_size=1) per thread"
    else:
        apps = []
        buses = [bus] * conc
        mode = f"one shared TrafiApplication(pool_size={shared_app.config.pool_size})"
    retries_before = sum(b.stats.retries for b in set(buses))

    barrier = threading.Barrier(conc + 1)
    results: list[list[tuple[float, float, str]]] = [[] for _ in range(conc)]
    profiles: list[cProfile.Profile | None] = [None] * conc
    stop_at = [0.0]

    def worker(idx: int) -> None:
        my_bus, out = buses[idx], results[idx]
        prof = cProfile.Profile() if profile_dir else None
        profiles[idx] = prof
        barrier.wait()
        if prof:
            prof.enable()
        try:
            for cart_id in per_thread[idx]:
                if time.perf_counter() >= stop_at[0]:
                    break
                t0 = time.perf_counter()
                try:
                    my_bus.execute(Checkout(cart_id=cart_id), shop.ctx)
                    status = "ok"
                except DomainError as error:
                    status = "stock" if error.code == "stock.insufficient" else f"error:{error.code}"
                except Exception as error:  # noqa: BLE001 — every other failure is an error
                    status = f"error:{type(error).__name__}"
                out.append((t0, time.perf_counter() - t0, status))
        finally:
            if prof:
                prof.disable()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(conc)]
    for th in threads:
        th.start()
    log(f"running {n} checkouts with {conc} concurrent clients ({mode}) ...")
    stop_at[0] = time.perf_counter() + args.checkout_timeout
    barrier.wait()
    t_start = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t_start
    retries = sum(b.stats.retries for b in set(buses)) - retries_before
    for a in apps:
        a.close()

    rows = sorted((row for rs in results for row in rs), key=lambda row: row[0])
    ok_ms = [d * 1000 for _, d, s in rows if s == "ok"]
    statuses = Counter(s for _, _, s in rows)
    errors = {k: v for k, v in statuses.items() if k.startswith("error:")}
    tenth = max(1, len(rows) // 10)
    first = [d * 1000 for _, d, s in rows[:tenth] if s == "ok"]
    last = [d * 1000 for _, d, s in rows[-tenth:] if s == "ok"]
    with psycopg.connect(dsn_for(db)) as conn:
        max_stock_events = conn.execute(
            "SELECT max(c) FROM (SELECT count(*) AS c FROM trafi_events "
            "WHERE topic LIKE 'trafi.stock_item.%%' AND originator_id = ANY(%s) GROUP BY originator_id) s",
            ([shop_stock_id(shop, sku) for sku in all_skus],),
        ).fetchone()[0]

    if profile_dir:
        stats = None
        for prof in profiles:
            if prof is None:
                continue
            if stats is None:
                stats = pstats.Stats(prof)
            else:
                stats.add(prof)
        write_profile(stats, profile_dir / "checkout")

    log(f"  {len(rows)} checkouts in {wall:.1f} s, retries {retries}, statuses {dict(statuses)}")
    return {
        "checkout_mode": mode,
        "checkout_skus": len(all_skus),
        "checkouts": len(rows),
        "checkouts_planned": n,
        "checkout_timed_out": len(rows) < n,
        "checkouts_ok": statuses.get("ok", 0),
        "checkout_errors": sum(errors.values()),
        "checkout_error_kinds": errors,
        "expected_stock_conflicts": statuses.get("stock", 0),
        "checkout_p50_ms": r(pctl(ok_ms, 50)),
        "checkout_p95_ms": r(pctl(ok_ms, 95)),
        "checkout_p99_ms": r(pctl(ok_ms, 99)),
        "checkout_max_ms": r(max(ok_ms) if ok_ms else None),
        "checkout_single_client_p50_ms": r(pctl(single_ms, 50)),
        "checkout_single_client_p95_ms": r(pctl(single_ms, 95)),
        "checkout_p50_ms_first_10pct": r(pctl(first, 50)),
        "checkout_p50_ms_last_10pct": r(pctl(last, 50)),
        "checkouts_per_s": r(len(rows) / wall, 1),
        "checkout_retries": retries,
        "checkout_attempts_per_checkout": r((len(rows) + retries) / len(rows)) if rows else None,
        "checkout_wall_s": r(wall, 1),
        "stock_item_max_events_after": max_stock_events,
    }


def shop_stock_id(shop, sku: str) -> UUID:
    from domain import ids

    return ids.stock_item_id(shop.ctx.store_id, sku)


# --------------------------------------------------------------------------- 3. statements on the wire

_PARSE = re.compile(r'^F\t\d+\tParse\t "(?P<name>[^"]*)" "(?P<query>.*)" \d+')
_BIND = re.compile(r'^F\t\d+\tBind\t "(?P<portal>[^"]*)" "(?P<name>[^"]*)"')
_EXECUTE = re.compile(r'^F\t\d+\tExecute\t "(?P<portal>[^"]*)"')
_QUERY = re.compile(r'^F\t\d+\tQuery\t "(?P<query>.*)"$')


def statement_kind(query: str) -> str:
    q = " ".join(query.split())
    u = q.upper()
    for word in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "LOCK TABLE", "DEALLOCATE", "SET", "NOTIFY", "LISTEN"):
        if u.startswith(word):
            return word
    if "INSERT INTO" in u:
        return "INSERT events (one statement, unnest)" if "UNNEST" in u else "INSERT"
    if u.startswith("SELECT") and "ORIGINATOR_ID = ANY" in u:
        return "SELECT events of aggregates (= ANY)"
    if u.startswith("SELECT"):
        return "SELECT " + q[7:47]
    return q[:40]


class WireTrace:
    """libpq tracing of every connection a pool opens, from the connection's first message."""

    def __init__(self) -> None:
        self.conns: list[tuple[psycopg.Connection, int, str]] = []  # (conn, fd, path)
        self.lock = threading.Lock()
        self.windows: dict[str, int] = {}

    def attach(self, conn: psycopg.Connection) -> None:
        fd, path = tempfile.mkstemp(prefix="trafi_bench_trace_", suffix=".log")
        with self.lock:
            self.conns.append((conn, fd, path))
        self._on(conn, fd)

    @staticmethod
    def _on(conn, fd) -> None:
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def flush(self) -> dict[str, int]:
        """Flush every trace (untrace flushes libpq's FILE*) and return the file sizes."""
        sizes = {}
        for conn, fd, path in self.conns:
            if not conn.closed:
                conn.pgconn.untrace()
            sizes[path] = os.path.getsize(path)
        return sizes

    def resume(self) -> None:
        for conn, fd, _ in self.conns:
            if not conn.closed:
                self._on(conn, fd)

    def count(self, start: dict[str, int], end: dict[str, int]) -> Counter:
        """Statements (Query/Execute messages) sent between two flushes, by kind."""
        kinds: Counter = Counter()
        for _, _, path in self.conns:
            with open(path, "rb") as f:
                data = f.read(end.get(path, 0)).decode("utf-8", "replace")
            offset = start.get(path, 0)
            names: dict[str, str] = {}
            portals: dict[str, str] = {}
            pos = 0
            for line in data.split("\n"):
                line_start, pos = pos, pos + len(line.encode("utf-8", "replace")) + 1
                if not line.startswith("F\t"):
                    continue
                in_window = line_start >= offset
                if m := _PARSE.match(line):
                    names[m["name"]] = m["query"]
                elif m := _BIND.match(line):
                    portals[m["portal"]] = names.get(m["name"], "?")
                elif m := _EXECUTE.match(line):
                    if in_window:
                        kinds[statement_kind(portals.get(m["portal"], "?"))] += 1
                elif m := _QUERY.match(line):
                    if in_window:
                        for part in filter(None, (p.strip() for p in m["query"].split(";"))):
                            kinds[statement_kind(part)] += 1
        return kinds

    def close(self) -> None:
        for conn, fd, path in self.conns:
            with contextlib.suppress(Exception):
                if not conn.closed:
                    conn.pgconn.untrace()
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)


def statements_phase(args, db: str) -> dict:
    from eventsourcing.postgres import PostgresDatastore

    from commands.bus import CommandBus
    from commands.cart import AddToCart, CreateCart
    from commands.checkout import Checkout
    from tests.factories import seed_small_store

    trace = WireTrace()
    original = PostgresDatastore.after_connect_func

    def traced_after_connect_func(self):
        after_connect = original(self)

        def configure(conn):
            trace.attach(conn)
            after_connect(conn)

        return configure

    PostgresDatastore.after_connect_func = traced_after_connect_func
    try:
        app = make_app(db, 1)
    finally:
        PostgresDatastore.after_connect_func = original
    try:
        bus = CommandBus(app)
        shop = seed_small_store(bus, stock=100_000)
        ctx = shop.ctx
        n_add, n_co = args.stmt_adds, args.stmt_checkouts
        # Adds: fresh carts, one add per SKU (same shape as the timed rounds).
        carts = [UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"]) for _ in range(-(-n_add // len(SKUS)))]
        adds = [
            AddToCart(cart_id=c, product_id=shop.products[sku], sku=sku, quantity=1)
            for c in carts for sku in SKUS
        ][:n_add]
        co_carts = ready_carts(bus, shop, [({SKUS[i % 3]: 1, SKUS[(i + 1) % 3]: 2}, f"s{i}@bench.example") for i in range(n_co)], 1)

        def window(commands) -> Counter:
            start = trace.flush()
            trace.resume()
            for cmd in commands:
                bus.execute(cmd, ctx)
            end = trace.flush()
            trace.resume()
            return trace.count(start, end)

        add_kinds = window(adds)
        co_kinds = window([Checkout(cart_id=c) for c in co_carts])
        with psycopg.connect(dsn_for(db)) as conn:
            add_bytes = conn.execute(
                "SELECT avg(length(state)) FROM trafi_events WHERE topic = 'trafi.cart.item_added.v1'"
            ).fetchone()[0]
        pool_stats = app.recorder.datastore.pool.get_stats()
    finally:
        app.close()
        trace.close()
    per = lambda kinds, n: {k: round(v / n, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}  # noqa: E731
    log(f"  statements: add_to_cart {per(add_kinds, len(adds))}; checkout {per(co_kinds, n_co)}; "
        f"pool connections traced {len(trace.conns)} ({pool_stats.get('connections_num')} opened)")
    return {
        "sql_statements_per_add_to_cart": round(sum(add_kinds.values()) / len(adds), 3),
        "sql_statements_per_checkout": round(sum(co_kinds.values()) / n_co, 3),
        "sql_add_to_cart_breakdown": per(add_kinds, len(adds)),
        "sql_checkout_breakdown": per(co_kinds, n_co),
        "sql_sample": {"add_to_carts": len(adds), "checkouts": n_co, "connections_traced": len(trace.conns)},
        "add_to_cart_event_bytes": r(float(add_bytes or 0), 0),
    }


# --------------------------------------------------------------------------- profiling output

def write_profile(stats: pstats.Stats | None, stem: Path) -> None:
    if stats is None:
        return
    stats.dump_stats(str(stem) + ".pstats")
    with open(str(stem) + ".txt", "w") as f:
        stats.stream = f
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    log(f"  profile written to {stem}.pstats / .txt")


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="length of each raw / add-to-cart round (s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of each, interleaved")
    p.add_argument("--max-ops", type=int, default=100_000, help="cap on operations per round")
    p.add_argument("--adds-per-cart", type=int, default=3, help="add-to-carts per fresh cart (≤ 3 distinct SKUs)")
    p.add_argument("--checkouts", type=int, default=2048, help="checkouts in the concurrent phase")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--single-checkouts", type=int, default=64, help="sequential single-client checkouts (baseline)")
    p.add_argument("--checkout-timeout", type=float, default=100.0, help="stop the checkout phase after this (s)")
    p.add_argument("--extra-skus", type=int, default=200,
                   help="add N more products so checkouts spread over 3+N stock items, like a real catalogue "
                        "(default 200); 0 = the flash-sale case: every checkout contends for the same 3 stock items")
    p.add_argument("--app-per-thread", action="store_true", help="one TrafiApplication per checkout thread")
    p.add_argument("--prep-workers", type=int, default=8, help="threads preparing ready carts (not timed)")
    p.add_argument("--stmt-adds", type=int, default=60, help="add-to-carts in the statement-count window")
    p.add_argument("--stmt-checkouts", type=int, default=30, help="checkouts in the statement-count window")
    p.add_argument("--profile", type=Path, default=None, help="directory for cProfile output (distorts timings)")
    p.add_argument("--skip", action="append", default=[], choices=["ratio", "checkout", "statements"])
    args = p.parse_args(argv)
    for name in ("seconds", "rounds", "checkouts", "concurrency", "stmt_adds", "stmt_checkouts", "adds_per_cart"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    from commands.bus import CommandBus
    from tests.factories import seed_small_store

    signal.signal(signal.SIGTERM, sigterm_to_exit)
    out: dict = {}
    t_total = time.perf_counter()
    with bench_database(log) as db:
        app = make_app(db, max(32, args.concurrency))
        try:
            if "ratio" not in args.skip:
                bus = CommandBus(app)
                shop = seed_small_store(bus, stock=0)
                raw_conn = psycopg.connect(dsn_for(db))
                try:
                    for ddl in RAW_DDL:
                        raw_conn.execute(ddl)
                    raw_conn.commit()
                    # Warm up both paths (connections, prepared statements, imports).
                    raw_round(raw_conn, 0.3, args.max_ops)
                    add_to_cart_round(bus, shop, 0.3, args.adds_per_cart, args.max_ops, batch_carts=20)
                    raws, adds = [], []
                    prof = cProfile.Profile() if args.profile else None
                    for i in range(args.rounds):
                        raws.append(raw_round(raw_conn, args.seconds, args.max_ops))
                        if prof:
                            prof.enable()
                        rate, _ = add_to_cart_round(bus, shop, args.seconds, args.adds_per_cart, args.max_ops)
                        if prof:
                            prof.disable()
                        adds.append(rate)
                        log(f"round {i + 1}/{args.rounds}: raw {raws[-1]:.0f}/s, add_to_cart {adds[-1]:.0f}/s")
                    if prof:
                        write_profile(pstats.Stats(prof), args.profile / "add_to_cart")
                finally:
                    raw_conn.close()
                a, b = statistics.median(adds), statistics.median(raws)
                out.update({
                    "add_to_cart_per_s": r(a, 1), "raw_commit_per_s": r(b, 1), "ratio": r(a / b, 3),
                    "add_to_cart_per_s_rounds": [r(x, 1) for x in adds],
                    "raw_commit_per_s_rounds": [r(x, 1) for x in raws],
                    "ratio_per_round": [r(x / y, 3) for x, y in zip(adds, raws)],
                    "raw_payload_bytes": RAW_PAYLOAD_BYTES,
                })
            if "checkout" not in args.skip:
                out["concurrency"] = args.concurrency
                out.update(checkout_phase(args, db, app, args.profile))
        finally:
            app.close()
        if "statements" not in args.skip:
            log("counting statements on the wire ...")
            out.update(statements_phase(args, db))
        with psycopg.connect(dsn_for(db)) as conn:
            out["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            out["synchronous_commit"] = conn.execute("SHOW synchronous_commit").fetchone()[0]
    out["cpu_count"] = os.cpu_count()
    out["profiled"] = bool(args.profile)
    out["bench_seconds"] = r(time.perf_counter() - t_total, 1)
    return out


if __name__ == "__main__":
    result = main()
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=False), flush=True)
