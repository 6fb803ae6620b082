"""Storefront event ingestion through the real API: POST /v1/events against an accept-only route.

    PYTHONPATH=. python bench/ingest.py                       # about 25 s
    PYTHONPATH=. python bench/ingest.py --seconds 20 --clients 8 --batch 100

What runs (loopback, every loop bounded in time):
  1. a store with a publishable key, seeded into a fresh embedded SQLite data directory;
  2. the app under uvicorn (uvloop, httptools) in a subprocess, on those files, with
     TRAFI_BENCH_BASELINE=1 so it also serves POST /bench/accept-only (reads the body, answers 202);
  3. `clients` closed-loop HTTP clients (aiohttp, keep-alive) in this process, sending batches of
     `batch` events built from one pre-serialised template (a bytes join per request, so the client
     leaves the server its share of the two cores), alternating rounds against the baseline route and
     against POST /v1/events with the same bodies;
  4. after the server stopped: every accepted event id is read back from the telemetry log.

Prints one JSON line: ingest_events_per_s (events durably accepted per second), ingest_p95_ms,
baseline_accept_only_per_s (events per second the accept-only route takes in the same bodies) and
ingest_vs_baseline, their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import logger, merge_runs, pctl, r  # noqa: E402

log = logger("ingest")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "bench-ingest-secret"
ROUND_SECONDS = 2.5


def measure_ingest(seconds: float = 10, clients: int = 8, batch: int = 100, *, feed_warehouse: bool = False) -> dict:
    """`feed_warehouse=True` keeps embedded mode's warehouse feeder in the server process, where it
    loads the same events into DuckDB on the same two cores; by default it is left to its own
    process (`trafi analytics run`, not started here), so the figures are ingestion's alone."""
    with tempfile.TemporaryDirectory(prefix="trafi-bench-ingest-") as data_dir:
        store_id, key = _seed_store(data_dir)
        port = _free_port()
        server = _start_server(data_dir, port, feed_warehouse)
        try:
            _wait_until_up(port, server)
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runs = runner.run(_drive(f"http://127.0.0.1:{port}", key, store_id, seconds, clients, batch))
        finally:
            server.terminate()
            server.wait(timeout=30)
        accepted = _accepted_ids(runs["ingest_bodies"], batch)
        stored = _stored_ids(data_dir)
        missing = len(accepted - stored)
        if missing:
            raise AssertionError(f"{missing} of {len(accepted)} accepted events are not in the telemetry log")
    ingest, baseline = runs["ingest"], runs["baseline"]
    ingest_rate = len(accepted) / ingest["seconds"]
    baseline_rate = baseline["requests"] * batch / baseline["seconds"]
    return {
        "ingest_events_per_s": round(ingest_rate),
        "ingest_p95_ms": r(pctl(ingest["latencies_ms"], 95)),
        "baseline_accept_only_per_s": round(baseline_rate),
        "ingest_vs_baseline": r(ingest_rate / baseline_rate, 3),
        "ingest_p50_ms": r(pctl(ingest["latencies_ms"], 50)),
        "baseline_p95_ms": r(pctl(baseline["latencies_ms"], 95)),
        "ingest_requests": ingest["requests"],
        "events_accepted": len(accepted),
        "events_verified_in_log": len(accepted) - missing,
        "clients": clients,
        "batch": batch,
        "rounds": runs["rounds"],
        "warehouse_fed_in_server": feed_warehouse,
    }


# --- setup ---------------------------------------------------------------------------------------


def _environment(data_dir: str, feed_warehouse: bool) -> dict[str, str]:
    env = {
        **os.environ, "PYTHONPATH": ROOT, "TRAFI_DATA_DIR": data_dir,
        "TRAFI_SQLITE_PATH": os.path.join(data_dir, "events.sqlite"), "TRAFI_EVENT_STORE": "sqlite",
        "TRAFI_SECRET_KEY": SECRET, "TRAFI_RATE_EVENTS": "1000000/1000000", "TRAFI_BENCH_BASELINE": "1",
    }
    if not feed_warehouse:  # the scaled shape: an analytics worker elsewhere owns the warehouse
        env["TRAFI_ANALYTICS_URL"] = "http://127.0.0.1:9"
    return env


def _seed_store(data_dir: str) -> tuple[str, str]:
    """A store and its publishable key, written to the data directory the server will open."""
    from api.bootstrap import bootstrap_store
    from commands.application import TrafiApplication
    from commands.bus import CommandBus
    from commands.config import EventStoreConfig

    app = TrafiApplication(EventStoreConfig(kind="sqlite", sqlite_path=os.path.join(data_dir, "events.sqlite")))
    try:
        store = bootstrap_store(CommandBus(app), SECRET.encode(), slug="bench-ingest", name="Bench",
                                owner_email="owner@bench.example", owner_password="bench-password-1")
    finally:
        app.close()
    return str(store.store_id), store.publishable_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(data_dir: str, port: int, feed_warehouse: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning"]
    return subprocess.Popen(command, cwd=ROOT, env=_environment(data_dir, feed_warehouse))


def _wait_until_up(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not come up")


# --- the load ------------------------------------------------------------------------------------


class Bodies:
    """Batches of unique events from one serialised template: per request, one bytes join."""

    def __init__(self, store_id: str, batch: int):
        now = datetime.now(timezone.utc).isoformat().encode()
        common = b'"occurred_at":"%s","store_id":"%s","session_id":"s-%%(n)d","visitor_id":"v-%%(n)d",' \
                 b'"device":"mobile","country":"DE"' % (now, store_id.encode())
        kinds = [
            b'{"type":"page_view","event_id":"%(id)s",' + common +
            b',"url":"https://shop.example/mugs/stoneware?utm_source=newsletter","referrer":"https://mail.example/",'
            b'"utm_source":"newsletter","utm_campaign":"november"}',
            b'{"type":"product_view","event_id":"%(id)s",' + common +
            b',"url":"https://shop.example/mugs/stoneware","product_id":"p-1842","variant":"blue"}',
            b'{"type":"add_to_cart","event_id":"%(id)s",' + common +
            b',"sku":"MUG-STONE-BLUE","quantity":2,"price":1890,"currency":"EUR","properties":{"list":"search"}}',
            b'{"type":"checkout_step","event_id":"%(id)s",' + common + b',"step":"shipping"}',
        ]
        self._templates = [kinds[i % len(kinds)] for i in range(batch)]
        self._prefix = uuid.uuid4().hex[:12]
        self._sent = 0

    def next(self) -> bytes:
        self._sent += 1
        base = f"{self._prefix}-{self._sent}-".encode()
        return b'{"events":[' + b",".join(
            t % {b"id": base + str(i).encode(), b"n": self._sent % 997} for i, t in enumerate(self._templates)
        ) + b"]}"


async def _closed_loop(session, url: str, headers: dict, bodies: Bodies, clients: int, seconds: float,
                       keep: list | None) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            body = bodies.next()
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    status = response.status
            except Exception:  # a refused or broken connection is counted, not fatal
                status, answer = 599, b""
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if keep is not None and status == 202:
                keep.append(answer)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"requests": len(latencies), "seconds": time.perf_counter() - started, "latencies_ms": latencies,
            "statuses": statuses}


def _loop_factory():
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _drive(base: str, key: str, store_id: str, seconds: float, clients: int, batch: int) -> dict:
    import aiohttp

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = Bodies(store_id, batch)
    rounds = max(1, round(seconds / ROUND_SECONDS))
    ingest, baseline, kept = [], [], []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm-up: connections, imports and caches on both sides (these events count nowhere).
        await _closed_loop(session, f"{base}/bench/accept-only", headers, bodies, clients, 1.0, None)
        await _closed_loop(session, f"{base}/v1/events", headers, bodies, clients, 1.0, [])
        for _ in range(rounds):
            baseline.append(await _closed_loop(session, f"{base}/bench/accept-only", headers, bodies, clients,
                                               seconds / rounds, None))
            ingest.append(await _closed_loop(session, f"{base}/v1/events", headers, bodies, clients,
                                             seconds / rounds, kept))
    ingest_run, baseline_run = merge_runs(ingest), merge_runs(baseline)
    log("ingest statuses", ingest_run["statuses"], "baseline statuses", baseline_run["statuses"])
    if set(ingest_run["statuses"]) != {202} or set(baseline_run["statuses"]) != {202}:
        raise AssertionError(f"unexpected statuses: {ingest_run['statuses']} / {baseline_run['statuses']}")
    return {"ingest": ingest_run, "baseline": baseline_run, "ingest_bodies": kept, "rounds": rounds}


# --- verification --------------------------------------------------------------------------------


def _accepted_ids(answers: list[bytes], batch: int) -> set[str]:
    accepted: set[str] = set()
    for answer in answers:
        result = json.loads(answer)
        if len(result["accepted"]) != batch or result["duplicates"] or result["rejected"]:
            raise AssertionError(f"a batch was not accepted whole: {answer[:300]!r}")
        accepted.update(result["accepted"])
    return accepted


def _stored_ids(data_dir: str) -> set[str]:
    """Every event id in the telemetry log the server wrote, read through a fresh TelemetryLog."""
    from autopilot.telemetry.log import TELEMETRY_COLUMNS, TelemetryLog
    from commands.config import EventStoreConfig

    telemetry = TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=os.path.join(data_dir, "events.sqlite")))
    column = TELEMETRY_COLUMNS.index("event_id")
    stored: set[str] = set()
    try:
        position = 0
        while rows := telemetry.read(position, 50_000):
            stored.update(row[column] for row in rows)
            position = rows[-1][0]
    finally:
        telemetry.close()
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="measured time per mode (ingest, baseline)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--feed-warehouse", action="store_true", help="keep the embedded warehouse feeder in the server")
    args = parser.parse_args()
    print(json.dumps(measure_ingest(args.seconds, args.clients, args.batch, feed_warehouse=args.feed_warehouse)),
          flush=True)


if __name__ == "__main__":
    main()
