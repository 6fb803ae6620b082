"""Rebuilding the warehouse from position 0 of both logs into a fresh file, then swapping it in.

Everything in the warehouse derives from the two logs, so a rebuild is the way to apply a
changed definition (a new column, another payment fee estimate) to the whole history. The new
file is built beside the live one (`<path>.rebuild`) and replaces it only when complete: a
failed rebuild leaves the live warehouse as it was. The live file must not be open elsewhere —
DuckDB's lock refuses the rebuild when the analytics worker (or an embedded server) holds it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from autopilot.warehouse.commerce import PaymentFees
from autopilot.warehouse.feeder import Progress, TelemetrySource, WarehouseFeeder
from autopilot.warehouse.store import Warehouse


class WarehouseInUse(Exception):
    pass


@dataclass(frozen=True)
class RebuildResult:
    path: str
    events: int  # storefront events and commerce positions consumed
    seconds: float
    positions: dict[str, int]


def _remove(path: str) -> None:
    for candidate in (path, path + ".wal"):
        if os.path.exists(candidate):
            os.remove(candidate)


def rebuild_warehouse(
    path: str, *, app=None, telemetry: TelemetrySource | None = None, fees: PaymentFees = PaymentFees(),
    progress: Progress | None = None, telemetry_batch: int = 250_000, commerce_batch: int = 5_000,
) -> RebuildResult:
    if os.path.exists(path):
        try:
            Warehouse(path).close()  # refused while another process owns it
        except Exception as error:
            raise WarehouseInUse(f"{path} is in use (stop the analytics worker first): {error}") from error
    fresh = str(Path(path).with_name(Path(path).name + ".rebuild"))
    _remove(fresh)
    started = time.perf_counter()
    warehouse = Warehouse(fresh)
    try:
        feeder = WarehouseFeeder(warehouse, app=app, telemetry=telemetry, fees=fees,
                                 telemetry_batch=telemetry_batch, commerce_batch=commerce_batch)
        events = feeder.catch_up(progress)
        positions = warehouse.positions()
        warehouse.checkpoint()
    finally:
        warehouse.close()
    _remove(path + ".wal")  # the old file's log must never be replayed onto the new one
    os.replace(fresh, path)
    return RebuildResult(path, events, time.perf_counter() - started, positions)
