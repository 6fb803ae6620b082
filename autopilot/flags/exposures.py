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
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from autopilot.flags.assignment import Exposure, Variant
from autopilot.telemetry.columns import EXPOSURE
from autopilot.telemetry.log import AppendResult, TelemetryLog, event_row

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
