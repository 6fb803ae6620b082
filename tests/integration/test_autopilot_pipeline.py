"""The whole data plane end to end: a simulated store's storefront events go through the ingestion
schemas into the telemetry log, the feeder loads them into the DuckDB warehouse, and the diagnosis
finds the problem planted in them — step and segment.

History older than the ingestion window (7 days) cannot arrive through POST /v1/events today, so each
simulated day is checked and appended as it would have been on that day (received at its end)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from itertools import groupby
from uuid import UUID, uuid5, NAMESPACE_DNS

import pytest

from autopilot.diagnosis.engine import diagnose
from autopilot.simulator import PlantedProblem, Simulation, StoreProfile
from autopilot.telemetry.log import TelemetryLog
from autopilot.telemetry.schemas import check_batch
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.store import Warehouse
from commands.config import EventStoreConfig

pytestmark = pytest.mark.slow

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 1, 3, 0, tzinfo=timezone.utc)
MOBILE_FR = {"device": "mobile", "country": "FR"}


def ingest_day_by_day(log: TelemetryLog, simulation: Simulation, store_id: UUID) -> int:
    accepted = 0
    events = simulation.events()
    for day, of_day in groupby(events, key=lambda e: e["occurred_at"][:10]):
        received_at = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), timezone.utc)
        received_at_us = int(received_at.timestamp() * 1_000_000)
        batch = list(of_day)
        for start in range(0, len(batch), 500):
            body = json.dumps({"events": batch[start:start + 500]}).encode()
            checked = check_batch(body, store_id=store_id, received_at_us=received_at_us)
            assert not checked.rejected, checked.rejected[:3]
            accepted += len(log.append(store_id, checked.rows, received_at_us).accepted)
    return accepted


def test_a_planted_problem_travels_from_storefront_events_to_a_finding(tmp_path):
    store_id = uuid5(NAMESPACE_DNS, "pipeline-store")
    problem = PlantedProblem("shipping", MOBILE_FR, 0.5, END - timedelta(days=6))
    simulation = Simulation(StoreProfile(str(store_id), visitors_per_day=5000, problems=(problem,)),
                            seed=3, end=END, days=35)
    log = TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "events.sqlite")))
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    try:
        accepted = ingest_day_by_day(log, simulation, store_id)
        assert accepted == log.head() > 100_000
        WarehouseFeeder(warehouse, telemetry=log).catch_up()
        assert warehouse.position("telemetry") == log.head()
        with warehouse.reading() as cur:
            diagnosis = diagnose(cur, str(store_id), NOW)
    finally:
        warehouse.close()
        log.close()
    assert diagnosis.basis == "history"
    steps_and_segments = [(f.step_name, f.segment.as_dict()) for f in diagnosis.findings]
    assert steps_and_segments == [("shipping", MOBILE_FR)], steps_and_segments
    (recommendation, *_) = diagnosis.candidates
    assert recommendation["implementation"] == {"method": "feature_flag", "flag_key": "checkout.shipping_estimate_on_cart"}
