"""Exposures as telemetry rows: what the server appends when a visitor first meets a flag's arm (§4).

An exposure travels through the telemetry log like a storefront event (kind `exposure`,
columns.SERVER_KINDS) and the warehouse feeder loads it into `exposures`. It uses existing columns:

    event_id        "exposure:{flag_key}:{visitor_id}:{variant}"
    kind            "exposure"
    occurred_at_us  when the flag was evaluated
    visitor_id      the randomisation unit
    variant         "treatment" | "control"
    properties      {"flag_key": …} (JSON)

`variant` already means "which version" and is free on an exposure row; the flag key goes in
`properties` rather than overloading another column with a different meaning (product_id, url …).

The event id makes the log's (store_id, event_id) uniqueness the durable de-duplication: the same
exposure repeated by another process, after a restart or an LRU eviction is stored once, while a
visitor seen in two variants yields two rows — which is how the warehouse learns of multiple
exposures. (A flag key has no ':' (FlagRule), and the variant is the last segment, so the id is unambiguous.)

Browsers cannot send exposures: POST /v1/events only knows columns.CLIENT_KINDS.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from autopilot.flags.assignment import Exposure, Variant
from autopilot.telemetry.columns import EXPOSURE
from autopilot.telemetry.log import AppendResult, TelemetryLog, event_row

log = logging.getLogger("trafi.flags")
ARMS = (Variant.TREATMENT.value, Variant.CONTROL.value)  # only these are exposures in the warehouse
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


def exposure_event_id(flag_key: str, visitor_id: str, variant: str) -> str:
    return f"exposure:{flag_key}:{visitor_id}:{variant}"


def _micros(at: datetime | int) -> int:
    if isinstance(at, bool):
        raise TypeError("at must be a datetime or integer microseconds")
    if isinstance(at, int):
        return at
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    return (at - _EPOCH) // _US


def exposure_row(flag_key: str, visitor_id: str, variant: str, at: datetime | int) -> tuple:
    """The telemetry row (EVENT_COLUMNS, what `TelemetryLog.append` takes) of one exposure.

    `at`: an aware datetime or microseconds since the epoch. The store is `append`'s argument, as for
    every row of the log (see `append_exposures`).
    """
    if variant not in ARMS:
        raise ValueError(f"an exposure's variant is one of {ARMS}, got {variant!r}")
    if not flag_key or ":" in flag_key:
        raise ValueError(f"flag_key must be non-empty and without ':', got {flag_key!r}")
    if not visitor_id:
        raise ValueError("an exposure needs a visitor_id")
    return event_row(
        event_id=exposure_event_id(flag_key, visitor_id, str(variant)), kind=EXPOSURE, occurred_at_us=_micros(at),
        visitor_id=visitor_id, variant=str(variant), properties=json.dumps({"flag_key": flag_key}),
    )


def append_exposures(log: TelemetryLog, exposures: Iterable[tuple[str, tuple]], *,
                     received_at_us: int | None = None) -> dict[str, AppendResult]:
    """Append (store_id, exposure_row) pairs, one transaction per store, outside the flow counters."""
    by_store: dict[str, list[tuple]] = defaultdict(list)
    for store_id, row in exposures:
        by_store[str(store_id)].append(row)
    received = time.time_ns() // 1000 if received_at_us is None else received_at_us
    return {store_id: log.append(store_id, rows, received, flow=False) for store_id, rows in by_store.items()}


def exposure_recorder(log: TelemetryLog, *, clock: Callable[[], int] = lambda: time.time_ns() // 1000,
                      ) -> Callable[[Exposure], None]:
    """An `on_first_exposure` callback for FlagEvaluator that appends treatment/control exposures.

    Assignments that are no arm (off: global holdout) are not exposures of an experiment and are skipped.
    """
    def record(exposure: Exposure) -> None:
        variant = exposure.assignment.variant.value
        if variant not in ARMS:
            return
        now = clock()
        log.append(exposure.store_id, [exposure_row(exposure.flag_key, exposure.visitor_id, variant, now)], now,
                   flow=False)

    return record


def batch_exposure_recorder(log: TelemetryLog, *, clock: Callable[[], int] = lambda: time.time_ns() // 1000,
                            ) -> Callable[[list[Exposure]], None]:
    """Records one request's first exposures in one append (one transaction, shared with concurrent
    requests by the log's group commit): durable when it returns."""
    def record(exposures: list[Exposure]) -> None:
        now = clock()
        by_store: dict[str, list[tuple]] = defaultdict(list)
        for exposure in exposures:
            variant = exposure.assignment.variant.value
            if variant in ARMS:
                by_store[exposure.store_id].append(exposure_row(exposure.flag_key, exposure.visitor_id, variant, now))
        for store_id, rows in by_store.items():
            log.append(store_id, rows, now, flow=False)

    return record


class ExposureWriter:
    """Writes first exposures off the request path: the storefront's answer does not wait for a disk sync.

    Whatever is queued is appended together (one transaction per store) by one background thread.
    Nothing is lost for good if the process dies with exposures queued: the flag evaluator's memory
    of "already exposed" dies with it, so the visitor's next evaluation records the exposure again,
    and the log's event id keeps it once. A failed write hands the exposures to `on_failure` (the
    evaluator forgets them, so they are recorded at the next evaluation) and is logged.
    """

    def __init__(self, record: Callable[[list[Exposure]], None], *,
                 on_failure: Callable[[list[Exposure]], None] = lambda exposures: None):
        self._record = record
        self._on_failure = on_failure
        self._queue: list[Exposure] = []
        self._lock = threading.Condition()
        self._pending = 0  # queued or being written
        self._stopping = False
        self._thread = self._started()

    def _started(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="trafi-exposures", daemon=True)
        thread.start()
        return thread

    def submit(self, exposures: list[Exposure]) -> None:
        with self._lock:
            if self._stopping:  # closed (an app's lifespan ended) and used again: write on
                self._thread.join()
                self._stopping = False
                self._thread = self._started()
            self._queue.extend(exposures)
            self._pending += len(exposures)
            self._lock.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (or failed); True if it was in time."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._stopping)
                if self._stopping and not self._queue:
                    return
                batch, self._queue = self._queue, []
            try:
                self._record(batch)
            except Exception:  # noqa: BLE001 — a failed write must not stop the writer
                log.exception("recording %d exposures failed; they are recorded at the next evaluation", len(batch))
                self._on_failure(batch)
            finally:
                with self._lock:
                    self._pending -= len(batch)
                    self._lock.notify_all()
