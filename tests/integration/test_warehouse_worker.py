"""The analytics worker loop: feeding in a thread beside readers, and the scheduled-jobs hook."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from autopilot.telemetry.log import TelemetryLog
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.queries import Window, reach_counts
from autopilot.warehouse.store import Warehouse
from autopilot.worker import AnalyticsWorker, ScheduledJob, register_job, registered_jobs
from tests.unit.test_warehouse_feeder import event, us


@pytest.fixture
def telemetry(app):
    log = TelemetryLog.open(app.config)
    yield log
    log.close()


def test_a_reader_never_sees_half_a_batch_while_the_worker_thread_writes_it(app, shop, telemetry, tmp_path):
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    telemetry.append(store, [event(0, now, visitor="v1"), event(3, now, visitor="v2")], received_at_us=us(now))
    inside, release = threading.Event(), threading.Event()

    def step(name: str) -> None:
        if name == "visitor_days":  # events and visitors are written, the funnel sums are not yet
            inside.set()
            assert release.wait(30)

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    feeder = WarehouseFeeder(warehouse, telemetry=telemetry, step=step)
    worker = AnalyticsWorker(warehouse, feeder, jobs=[], poll_interval_s=0.05).start()
    try:
        assert inside.wait(30)
        today = Window(now.date(), now.date())
        with warehouse.reading() as cur:  # another thread, its own cursor, during the batch's transaction
            assert cur.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
            assert cur.execute("SELECT count(*) FROM visitors").fetchall() == [(0,)]
            assert reach_counts(cur, store, today) == [0] * 7
        release.set()
        deadline = datetime.now() + timedelta(seconds=30)
        while warehouse.position("telemetry") < 2:
            assert datetime.now() < deadline
            worker.wake()
            threading.Event().wait(0.02)
        with warehouse.reading() as cur:
            assert reach_counts(cur, store, today) == [2, 1, 1, 1, 0, 0, 0]
            assert cur.execute("SELECT count(*) FROM events").fetchall() == [(2,)]
    finally:
        release.set()
        worker.stop()


class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def test_scheduled_jobs_run_on_their_interval_and_remember_it_across_restarts(app, tmp_path):
    calls: list[tuple[str, datetime]] = []
    clock = Clock(datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc))

    def daily(warehouse, application, now):
        assert application is app and isinstance(warehouse, Warehouse)
        with warehouse.reading() as cur:
            cur.execute("SELECT count(*) FROM visitor_days").fetchall()
        calls.append(("daily", now))

    def broken(warehouse, application, now):
        calls.append(("broken", now))
        raise RuntimeError("no data today")

    jobs = [ScheduledJob("daily", 86_400, daily), ScheduledJob("broken", 3_600, broken)]
    path = tmp_path / "warehouse.duckdb"

    def worker() -> AnalyticsWorker:
        warehouse = Warehouse(path)
        return AnalyticsWorker(warehouse, WarehouseFeeder(warehouse, app=app), jobs=jobs, clock=clock)

    first = worker()
    assert first.run_due_jobs() == ["daily", "broken"]  # a failing job does not stop the next one
    clock.moment += timedelta(hours=2)
    assert first.run_due_jobs() == ["broken"]
    with first.warehouse.reading() as cur:
        recorded = dict(cur.execute("SELECT name, last_error FROM warehouse_jobs").fetchall())
    assert recorded["daily"] is None and "no data today" in recorded["broken"]
    first.stop()

    restarted = worker()  # a restart does not run the daily job again before its day is up
    clock.moment += timedelta(hours=21)
    assert restarted.run_due_jobs() == ["broken"]
    clock.moment += timedelta(hours=1)
    assert restarted.run_due_jobs() == ["daily", "broken"]
    restarted.stop()
    assert [name for name, _ in calls] == ["daily", "broken", "broken", "broken", "daily", "broken"]


def test_register_job_is_the_hook_the_worker_picks_up():
    def nothing(warehouse, application, now):
        return None

    job = register_job("test.nothing", 60, nothing)
    try:
        assert job in registered_jobs()
        assert register_job("test.nothing", 120, nothing).interval_s == 120
        assert [j.name for j in registered_jobs()].count("test.nothing") == 1
        with pytest.raises(ValueError):
            register_job("test.never", 0, nothing)
    finally:
        from autopilot import worker
        worker.SCHEDULED_JOBS[:] = [j for j in worker.SCHEDULED_JOBS if j.name != "test.nothing"]


def test_a_failing_source_is_reported_and_retried_without_stopping_the_loop(app, tmp_path):
    closed = TelemetryLog.open(app.config)
    closed.close()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    worker = AnalyticsWorker(warehouse, WarehouseFeeder(warehouse, app=app, telemetry=closed), jobs=[])
    assert worker.feed() == 0
    assert worker.last_error is not None and "closed" in worker.last_error
    worker.feeder.telemetry = TelemetryLog.open(app.config)
    try:
        worker.feed()
        assert worker.last_error is None
    finally:
        worker.feeder.telemetry.close()
        worker.stop()
