"""`trafi analytics run|rebuild`: the analytics worker of the scaled deployment, and its warehouse.

`run` owns the warehouse file (TRAFI_WAREHOUSE_PATH, default TRAFI_DATA_DIR/warehouse.duckdb):
it feeds it from the commerce and telemetry logs, runs the scheduled analytics jobs, and serves
the analytics routes on --port so that API replicas (TRAFI_ANALYTICS_URL) can forward to it.
SIGTERM ends it between batches.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import dataclass, replace

from api.settings import ApiSettings

log = logging.getLogger("trafi.analytics")


@dataclass
class WorkerServices:
    """What the analytics routes and their authentication use, in the worker's HTTP server."""

    settings: ApiSettings
    app: object  # TrafiApplication: credentials are checked against the write side, as in the API
    auth: object
    limiter: object
    analytics: object  # AnalyticsWorker
    bus: object = None  # CommandBus: an on-demand diagnosis records its run
    views: object = None  # ViewStore: the decider tick reads the live ChangeSets from the read model

    @property
    def warehouse(self):
        return self.analytics.warehouse


def create_worker_app(settings: ApiSettings, app, worker):
    """The worker's HTTP app: the analytics routes (answered here, never forwarded) and /healthz."""
    from fastapi import FastAPI

    from api import problems
    from api.auth import Authenticator
    from api.metrics import ApiMetrics
    from api.middleware import EdgeMiddleware
    from api.ratelimit import limiter_for
    from api.routers import analytics, autopilot, diagnosis
    from commands.bus import CommandBus
    from projections.views import ViewStore

    http = FastAPI(title="Trafi analytics worker", openapi_url=None, docs_url=None, redoc_url=None)
    # In-process rate limits: the API replicas have already charged the shared buckets for this request.
    http.state.services = WorkerServices(settings=replace(settings, analytics_url=None), app=app,
                                         auth=Authenticator(app), limiter=limiter_for(None), analytics=worker,
                                         bus=CommandBus(app), views=ViewStore(settings.event_store))
    problems.install(http)
    http.include_router(analytics.router)
    http.include_router(diagnosis.run_router)
    http.include_router(autopilot.tick_router)

    @http.get("/healthz", include_in_schema=False)
    def healthz():
        try:
            lag = worker.feeder.lag()
        except Exception as error:  # a log is away: the worker still answers from what it has
            lag = f"unknown: {type(error).__name__}"
        healthy = worker.last_error is None and isinstance(lag, dict)
        return {"status": "ok" if healthy else "degraded", "positions": worker.warehouse.positions(), "lag": lag,
                "last_error": worker.last_error}

    http.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes, metrics=ApiMetrics())
    return http


class _HttpThread:
    """uvicorn in a thread (no signal handlers there: SIGTERM belongs to the worker loop)."""

    def __init__(self, http, host: str, port: int):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(http, host=host, port=port, log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="trafi-analytics-http", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise SystemExit("trafi analytics run: the HTTP server did not start (is the port free?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _fees(settings: ApiSettings):
    from autopilot.warehouse.commerce import PaymentFees

    return PaymentFees(settings.payment_fee_bp, settings.payment_fee_fixed_minor)


def cmd_run(args: argparse.Namespace) -> int:
    from api.cli_projections import run_until_sigterm
    from autopilot.telemetry.log import TelemetryLog
    from autopilot.warehouse.feeder import WarehouseFeeder
    from autopilot.warehouse.store import Warehouse
    from autopilot.worker import AnalyticsWorker
    from commands.application import TrafiApplication

    settings = ApiSettings.from_env()
    try:
        warehouse = Warehouse(settings.warehouse_path)
    except Exception as error:
        raise SystemExit(f"trafi analytics run: cannot open the warehouse {settings.warehouse_path}: {error}") from None
    app = TrafiApplication(settings.event_store)
    telemetry = TelemetryLog.open(settings.event_store)
    feeder = WarehouseFeeder(warehouse, app=app, telemetry=telemetry, fees=_fees(settings),
                             telemetry_batch=args.batch_size)
    worker = AnalyticsWorker(warehouse, feeder, poll_interval_s=args.poll_interval)
    http = _HttpThread(create_worker_app(settings, app, worker), args.host, args.port)
    http.start()
    log.info("analytics worker: warehouse %s, routes on %s:%s, jobs: %s", settings.warehouse_path, args.host,
             args.port, ", ".join(j.name for j in worker.jobs) or "none")
    return run_until_sigterm(worker.run, worker.request_stop, http.stop, worker.stop, telemetry.close, app.close)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from autopilot.telemetry.log import TelemetryLog
    from autopilot.warehouse.rebuild import WarehouseInUse, rebuild_warehouse
    from commands.application import TrafiApplication

    settings = ApiSettings.from_env()
    app = TrafiApplication(settings.event_store)
    telemetry = TelemetryLog.open(settings.event_store)
    done = {"telemetry": 0, "commerce": 0}

    def progress(source: str, events: int, position: int) -> None:
        done[source] = position
        print(f"\rrebuild: telemetry at {done['telemetry']:,}, commerce at {done['commerce']:,}", end="",
              file=sys.stderr, flush=True)

    try:
        result = rebuild_warehouse(settings.warehouse_path, app=app, telemetry=telemetry, fees=_fees(settings),
                                   progress=progress)
    except WarehouseInUse as refused:
        print(f"refusing to rebuild: {refused}", file=sys.stderr)
        return 1
    finally:
        telemetry.close()
        app.close()
    print(file=sys.stderr)
    print(f"rebuilt {result.path}: {result.events:,} events and positions in {result.seconds:.1f} s, "
          f"now at telemetry {result.positions['telemetry']}, commerce {result.positions['commerce']}")
    return 0


def demo_summary(app, path: str, store_id: str) -> str:
    """Feed the embedded warehouse up to now and describe the store's funnel (for `trafi demo`)."""
    from datetime import datetime, timedelta, timezone

    from autopilot.telemetry.log import TelemetryLog
    from autopilot.warehouse.feeder import WarehouseFeeder
    from autopilot.warehouse.queries import Window, funnel, overview
    from autopilot.warehouse.store import Warehouse

    try:
        warehouse = Warehouse(path)
    except Exception as error:  # a running `trafi serve` owns it and feeds it already
        return f"  warehouse   {path} is in use ({type(error).__name__}); the server that owns it keeps it fed"
    telemetry = TelemetryLog.open(app.config)
    try:
        feeder = WarehouseFeeder(warehouse, app=app, telemetry=telemetry)
        feeder.catch_up()
        today = datetime.now(timezone.utc).date()
        window = Window(today - timedelta(days=29), today)
        with warehouse.reading() as cur:
            steps = funnel(cur, store_id, window).steps
            profit = overview(cur, store_id, window).gross_profit_minor.current
    finally:
        telemetry.close()
        warehouse.close()
    path_of_buyers = " → ".join(f"{s.step} {s.visitors}" for s in steps)
    return (f"  warehouse   funnel (visitor-days, 30 days): {path_of_buyers}; "
            f"gross profit {profit / 100:,.2f} EUR after COGS and payment fees ({path})")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("analytics", help="the analytics worker and its DuckDB warehouse")
    actions = parser.add_subparsers(dest="action", required=True)

    run = actions.add_parser("run", help="own and feed the warehouse, run analytics jobs, serve the analytics routes")
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--port", type=int, default=8100)
    run.add_argument("--batch-size", type=int, default=50_000, help="storefront events per warehouse batch")
    run.add_argument("--poll-interval", type=float, default=1.0, help="seconds between looks when caught up")
    run.set_defaults(func=cmd_run)

    again = actions.add_parser("rebuild", help="delete the warehouse and feed it again from position 0 "
                                              "(stop the analytics worker first)")
    again.set_defaults(func=cmd_rebuild)
