"""Keeping a group of projections current, for as long as the process lives.

One loop serves the group: catch every projection up, then sleep until the
log may have grown. On PostgreSQL the sleep ends on the NOTIFY that every save
sends (commands/eventstore.py); SQLite has no notifications, so it polls.
`wake()` ends the sleep at once — embedded mode calls it after each command.

A halted projection (a handler raised) is retried every `retry_halted_s`, from
the same event; the others keep running meanwhile.

The same class is the in-process runner (`start()`: a daemon thread beside the
application) and the worker process (`trafi projections run`: `run()` in the
foreground until SIGTERM).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

import psycopg

from commands.application import TrafiApplication
from projections.projection import Projection
from projections.runner import FedFromKafka, ProjectionHalted, ProjectionRunner
from projections.views import ViewStore

log = logging.getLogger("trafi.projections")


class ProjectionWorker:
    def __init__(
        self,
        app: TrafiApplication,
        views: ViewStore,
        projections: Iterable[Projection],
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.05,
        retry_halted_s: float = 5.0,
    ):
        self.app = app
        self.runners = [ProjectionRunner(app, views, p, batch_size=batch_size) for p in projections]
        self.poll_interval_s = poll_interval_s
        self.retry_halted_s = retry_halted_s
        self.halted: dict[str, float] = {}  # name → when to try again
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = _Listener(app) if app.config.kind == "postgres" else None

    # -- in-process --------------------------------------------------------------------
    def start(self) -> ProjectionWorker:
        self._thread = threading.Thread(target=self.run, name="trafi-projections", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.close()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        if self._listener is not None:
            self._listener.listen()  # before the first catch-up: no save can slip between
        while not self._stop.is_set():
            self.run_once()
            self._sleep()

    def run_once(self) -> int:
        """Catch every projection that is not waiting out a halt up; return the events applied."""
        applied = 0
        for runner in self.runners:
            if self.halted.get(runner.name, 0) > time.monotonic():
                continue
            try:
                applied += runner.catch_up().applied
                self.halted.pop(runner.name, None)
            except ProjectionHalted:
                self.halted[runner.name] = time.monotonic() + self.retry_halted_s
            except FedFromKafka as moved:
                if runner.name not in self.halted:
                    log.warning("%s", moved)
                self.halted[runner.name] = time.monotonic() + 60.0  # until it is rebuilt back
            except Exception:  # the view or event database is away: try again after a pause
                log.exception("projection %s could not catch up", runner.name)
                self.halted[runner.name] = time.monotonic() + self.retry_halted_s
        return applied

    def _sleep(self) -> None:
        if self._listener is not None:
            self._listener.wait(timeout=min(self.retry_halted_s, 1.0), interrupt=self._wake)
        else:
            self._wake.wait(self.poll_interval_s)
        self._wake.clear()


class _Listener:
    """LISTEN on the event store's channel on a connection of its own."""

    def __init__(self, app: TrafiApplication):
        self._dsn = app.config.postgres_dsn
        self._channel = app.recorder.channel_name
        self._conn: psycopg.Connection | None = None

    def listen(self) -> None:
        self._conn = psycopg.connect(self._dsn, autocommit=True)
        self._conn.execute(f'LISTEN "{self._channel}"')

    def wait(self, timeout: float, interrupt: threading.Event) -> None:
        """Return on a notification, after `timeout`, or soon after `interrupt` is set."""
        deadline = time.monotonic() + timeout
        try:
            while not interrupt.is_set() and time.monotonic() < deadline:
                # Short slices so wake()/stop() are honoured promptly even with no NOTIFY.
                if any(True for _ in self._conn.notifies(timeout=0.1, stop_after=1)):
                    self._drain()  # (outside the first generator: it holds the connection's lock)
                    return
        except psycopg.OperationalError:
            log.warning("lost the LISTEN connection; reconnecting")
            self.close()
            time.sleep(0.5)
            self.listen()

    def _drain(self) -> None:
        # A burst of saves sends a burst of NOTIFYs; one catch-up covers them all.
        for _ in self._conn.notifies(timeout=0.001, stop_after=10_000):
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
