"""The analytics worker: owns the warehouse, keeps it fed, runs the scheduled analytics jobs.

The same class runs in two places (ARCHITECTURE.md, "Analytics and the autopilot"):
* embedded — a daemon thread of the API server (`start()`/`stop()`, from Services);
* scaled — the foreground loop of `trafi analytics run` (`run()` until SIGTERM), beside the
  HTTP server that answers the analytics routes the API replicas forward.

Scheduled jobs (the diagnosis registers a daily one) are `ScheduledJob(name, interval_s,
run(warehouse, app, now))`. A module that defines jobs calls `register_job(...)` at import and
is named in JOB_MODULES, which the worker imports when it starts. When a job last ran is kept in
the warehouse (`warehouse_jobs`), so a restart does not run a daily job again; a job that raises
is logged, its error recorded, and it is tried again after its interval.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.store import Warehouse

log = logging.getLogger("trafi.analytics")

JobFunction = Callable[[Warehouse, object, datetime], None]  # (warehouse, TrafiApplication, now UTC)

# Modules whose import registers scheduled jobs.
JOB_MODULES: tuple[str, ...] = ("autopilot.diagnosis.jobs", "autopilot.decider_job")


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    interval_s: float
    run: JobFunction


SCHEDULED_JOBS: list[ScheduledJob] = []


def register_job(name: str, interval_s: float, run: JobFunction) -> ScheduledJob:
    """Add a job every analytics worker runs (a second registration under the same name replaces it)."""
    if interval_s <= 0:
        raise ValueError(f"job {name}: the interval must be positive, not {interval_s}")
    job = ScheduledJob(name, float(interval_s), run)
    SCHEDULED_JOBS[:] = [j for j in SCHEDULED_JOBS if j.name != name] + [job]
    return job


def registered_jobs() -> list[ScheduledJob]:
    for module in JOB_MODULES:
        importlib.import_module(module)
    return list(SCHEDULED_JOBS)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AnalyticsWorker:
    def __init__(
        self,
        warehouse: Warehouse,
        feeder: WarehouseFeeder,
        *,
        jobs: list[ScheduledJob] | None = None,
        poll_interval_s: float = 1.0,
        retry_s: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
        owns_warehouse: bool = True,
    ):
        self.warehouse = warehouse
        self.feeder = feeder
        self.jobs = registered_jobs() if jobs is None else list(jobs)
        self.poll_interval_s = poll_interval_s
        self.retry_s = retry_s
        self.clock = clock
        self.owns_warehouse = owns_warehouse
        self.last_error: str | None = None  # the feeder's, until a batch goes through again
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def app(self):
        return self.feeder.app

    # -- in-process -----------------------------------------------------------------------
    def start(self) -> AnalyticsWorker:
        self._thread = threading.Thread(target=self.run, name="trafi-analytics", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to end (between batches) and wait for it; then close the warehouse if ours."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.owns_warehouse:
            self.warehouse.close()

    def request_stop(self) -> None:
        """From a signal handler: end the loop, touch nothing else."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        while not self._stop.is_set():
            fed = self.feed()
            self.run_due_jobs()
            if fed == 0:
                self._wake.wait(self.poll_interval_s if self.last_error is None else self.retry_s)
                self._wake.clear()

    def feed(self) -> int:
        """One batch from each source; a failure is logged and retried after `retry_s`."""
        try:
            fed = self.feeder.feed_once()
        except Exception as error:  # the event store or telemetry log is away, or a bad batch
            reason = f"{type(error).__name__}: {error}"
            if reason != self.last_error:
                log.exception("the warehouse feeder failed; retrying every %.0f s", self.retry_s)
            self.last_error = reason
            return 0
        self.last_error = None
        return fed

    def run_due_jobs(self) -> list[str]:
        """Run every job whose interval has passed since it last started; returns their names."""
        ran = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            now = self.clock()
            last = self._last_run(job.name)
            if last is not None and now - last < timedelta(seconds=job.interval_s):
                continue
            self._run(job, now)
            ran.append(job.name)
        return ran

    def _last_run(self, name: str) -> datetime | None:
        with self.warehouse.reading() as cur:
            rows = cur.execute("SELECT last_run_at FROM warehouse_jobs WHERE name = ?", [name]).fetchall()
        return rows[0][0].replace(tzinfo=timezone.utc) if rows else None

    def _run(self, job: ScheduledJob, now: datetime) -> None:
        started = time.perf_counter()
        error = None
        try:
            job.run(self.warehouse, self.app, now)
        except Exception as failure:
            error = "".join(traceback.format_exception_only(type(failure), failure)).strip()[:2000]
            log.exception("analytics job %s failed", job.name)
        else:
            log.info("analytics job %s done in %.1f s", job.name, time.perf_counter() - started)
        with self.warehouse.writing() as cur:
            cur.execute("INSERT OR REPLACE INTO warehouse_jobs VALUES (?, ?, ?)",
                        [job.name, now.astimezone(timezone.utc).replace(tzinfo=None), error])
