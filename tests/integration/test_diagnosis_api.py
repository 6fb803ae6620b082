"""The diagnosis end to end: simulated traffic in a DuckDB warehouse, runs recorded in the real event
store (SQLite and PostgreSQL), the read model, and the admin API (run, read, dismiss)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import duckdb
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from autopilot.diagnosis.engine import diagnose_all_stores, run_diagnosis
from autopilot.simulator import FixedClock, PlantedProblem, Simulation, StoreProfile, SystemClock, load_into
from commands.bus import CommandBus
from commands.context import StoreContext
from commands.diagnosis import DismissRecommendation
from domain.diagnosis import StoreDiagnosis, diagnosis_id
from projections.read_models.recommendations import DiagnosisRecommendations
from projections.runner import ProjectionRunner
from projections.testing import clean_build, table_rows
from queries.diagnosis import DiagnosisQueries
from tests.api.conftest import api_settings, open_api_store
from tests.conftest import make_config

MOBILE_FR = {"device": "mobile", "country": "FR"}


def planted_store(store_id: str, clock, *, days: int = 35, problem_days: int = 7, end_offset: int = 0,
                  **profile) -> Simulation:
    """A store whose mobile visitors from FR started dropping at the shipping step `problem_days` ago."""
    simulation = Simulation.up_to(StoreProfile(store_id, **profile), clock, seed=7, days=days)
    start = simulation.end - timedelta(days=problem_days - 1)
    end = simulation.end - timedelta(days=end_offset) if end_offset else None
    problem = PlantedProblem("shipping", MOBILE_FR, 0.5, start, end)
    return Simulation(StoreProfile(store_id, problems=(problem,), **profile), seed=7, end=simulation.end, days=days)


@pytest.fixture
def diagnosis_api(store_kind, tmp_path):
    """The API with an embedded analytics worker: this process owns the warehouse."""
    from tests.conftest import create_pg_database, drop_pg_database

    pg_name = create_pg_database() if store_kind == "postgres" else None
    services = build_services(api_settings(make_config(store_kind, tmp_path, pg_name, pool_size=10),
                                           warehouse_path=str(tmp_path / "warehouse.duckdb")))
    store, other = open_api_store(services), open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield client, services, store, other
    if pg_name:
        drop_pg_database(pg_name)


def test_without_a_warehouse_an_on_demand_run_is_unavailable_not_an_error(tmp_path):
    services = build_services(api_settings(make_config("sqlite", tmp_path), warehouse_path=None))
    store = open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        refused = client.post("/v1/admin/analytics/diagnosis/run", headers=store.admin)
        assert refused.status_code == 503 and refused.json()["code"] == "analytics.unavailable"
        assert refused.headers["Retry-After"]
        assert client.get("/v1/admin/analytics/diagnosis", headers=store.admin).status_code == 200


def test_run_read_and_dismiss_through_the_admin_api(diagnosis_api):
    client, services, store, other = diagnosis_api
    headers = store.admin
    empty = client.get("/v1/admin/analytics/diagnosis", headers=headers)
    assert empty.status_code == 200 and empty.json() == {"latest_run": None, "findings": [], "recommendations": []}

    assert services.warehouse is not None
    load_into(services.warehouse, planted_store(str(store.keys.store_id), SystemClock()))
    ran = client.post("/v1/admin/analytics/diagnosis/run", headers={**headers, "Idempotency-Key": "run-1"})
    assert ran.status_code == 200, ran.text
    outcome = ran.json()
    assert outcome["findings"] == 1 and len(outcome["issued"]) == 1 and outcome["active"] == outcome["issued"]
    replay = client.post("/v1/admin/analytics/diagnosis/run", headers={**headers, "Idempotency-Key": "run-1"})
    assert replay.json() == outcome and replay.headers["Idempotent-Replayed"] == "true"

    position = ran.headers["X-Trafi-Position"]
    seen = client.get(f"/v1/admin/analytics/diagnosis?min_position={position}", headers=headers).json()
    assert seen["latest_run"]["run_id"] == outcome["run_id"] and seen["latest_run"]["trigger"] == "on_demand"
    assert [step["step"] for step in seen["latest_run"]["steps"]] == [
        "visit", "product_view", "add_to_cart", "checkout_start", "shipping", "payment"]
    (finding,) = seen["findings"]
    assert (finding["step"], finding["segment"]) == ("shipping", MOBILE_FR)
    assert finding["causes"][0]["cause"] == "unexpected_shipping_costs" and finding["probability"] >= finding["threshold"]
    (recommendation,) = seen["recommendations"]
    assert recommendation["recommendation_id"] == outcome["issued"][0] and recommendation["rank"] == 1
    assert recommendation["implementation"]["flag_key"] == "checkout.shipping_estimate_on_cart"
    assert recommendation["expected_impact"]["gross_profit_per_month"]["typical"] > 0
    assert recommendation["evidence"]["finding"]["recent"]["reached"] > 0
    assert recommendation["evidence"]["period"] == outcome["period"]

    # Another store sees nothing of it and cannot dismiss it.
    assert client.get("/v1/admin/analytics/diagnosis", headers=other.admin).json()["recommendations"] == []
    foreign = client.post(f"/v1/admin/analytics/recommendations/{recommendation['recommendation_id']}/dismiss",
                          headers=other.admin)
    assert foreign.status_code == 404

    url = f"/v1/admin/analytics/recommendations/{recommendation['recommendation_id']}/dismiss"
    dismissed = client.post(url, json={"note": "we ship free to France already"}, headers=headers)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    again = client.post(url, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "recommendation.not_active"
    unknown = client.post(f"/v1/admin/analytics/recommendations/{uuid4()}/dismiss", headers=headers)
    assert unknown.status_code == 404
    bad = client.post(url, json={"note": "x" * 501}, headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "body.note"
    after = client.get(f"/v1/admin/analytics/diagnosis?min_position={dismissed.headers['X-Trafi-Position']}",
                       headers=headers).json()
    assert after["recommendations"] == []


def test_recommendations_last_while_the_problem_lasts_and_lapse_when_it_ends(tmp_path):
    from commands.application import TrafiApplication

    app = TrafiApplication(make_config("sqlite", tmp_path))
    bus = CommandBus(app)
    store = str(uuid4())
    clock = FixedClock(datetime(2026, 6, 1, 3, tzinfo=timezone.utc))
    warehouse = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        # 63 days; the problem started 35 days before the end: by now it is in the whole baseline.
        lasting = planted_store(store, clock, days=63, problem_days=35)
        load_into(warehouse, lasting)
        first_look = clock.now() - timedelta(days=28)  # a week into the problem
        first = run_diagnosis(warehouse, bus, store, first_look)
        assert len(first.issued) == 1
        later = run_diagnosis(warehouse, bus, store, clock.now())
        assert all(f["step"] != "shipping" for f in later.findings)  # not unusual any more…
        assert later.active == first.issued and later.retired == []  # …but the recommendation stands
        # The problem ended 14 days ago: the recent week is healthy again, the recommendation lapses.
        load_into(warehouse, planted_store(store, clock, days=63, problem_days=35, end_offset=14))
        fixed = run_diagnosis(warehouse, bus, store, clock.now() + timedelta(hours=1))
        assert fixed.retired == [{"recommendation_id": first.issued[0], "reason": "no_longer_supported"}]
        assert fixed.active == []
    finally:
        warehouse.close()
        app.close()


def test_the_daily_job_diagnoses_every_store_and_the_read_model_rebuilds_identically(tmp_path):
    from commands.application import TrafiApplication
    from projections.views import ViewStore

    app = TrafiApplication(make_config("sqlite", tmp_path))
    views = ViewStore(app.config)
    bus = CommandBus(app)
    clock = FixedClock(datetime(2026, 6, 1, 3, tzinfo=timezone.utc))
    warehouse = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        sick, healthy = str(uuid4()), str(uuid4())
        load_into(warehouse, planted_store(sick, clock))
        load_into(warehouse, Simulation.up_to(StoreProfile(healthy), clock, seed=3, days=35))
        # A store id the event store cannot take: logged and skipped, the others still run.
        warehouse.execute("INSERT INTO visitor_days (store_id, day, visitor_id, is_returning, max_step) "
                          "VALUES ('not-a-uuid', ?, 'v', false, 0)", [date(2026, 5, 30)])
        results = {r.store_id: r for r in diagnose_all_stores(warehouse, bus, clock.now())}
        assert set(results) == {sick, healthy}
        assert len(results[sick].issued) == 1 and results[healthy].issued == [] == results[healthy].findings
        sick_diagnosis = app.repository.get(diagnosis_id(UUID(sick)))
        assert isinstance(sick_diagnosis, StoreDiagnosis) and sick_diagnosis.last_run["trigger"] == "schedule"
        bus.execute(DismissRecommendation(recommendation_id=UUID(results[sick].issued[0]), note="not now",
                                          at=clock.now()), StoreContext(UUID(sick), actor="user:merchant"))
        results = {r.store_id: r for r in diagnose_all_stores(warehouse, bus, clock.now() + timedelta(days=1))}
        assert results[sick].issued == [] and results[sick].active == []  # dismissed: not proposed again

        projection = DiagnosisRecommendations()
        ProjectionRunner(app, views, projection).catch_up()
        assert table_rows(views, projection) == clean_build(app, projection, tmp_path)
        overview = DiagnosisQueries(views).overview(StoreContext(UUID(sick)))
        assert overview.latest_run is not None and overview.recommendations == []
        with views.read() as tx:
            reasons = tx.execute("SELECT retired_reason, retired_by, retired_note FROM rm_diagnosis_recommendations "
                                 "WHERE store_id = %s", (sick,)).fetchall()
        assert reasons == [("dismissed", "user:merchant", "not now")]
    finally:
        warehouse.close()
        views.close()
        app.close()


def test_the_scheduled_job_runs_on_the_workers_warehouse(tmp_path):
    from autopilot.diagnosis import jobs
    from autopilot.warehouse.store import Warehouse
    from autopilot.worker import SCHEDULED_JOBS
    from commands.application import TrafiApplication

    assert jobs.JOB in SCHEDULED_JOBS and jobs.JOB.interval_s == 24 * 3600
    app = TrafiApplication(make_config("sqlite", tmp_path))
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    clock = FixedClock(datetime(2026, 6, 1, 3, tzinfo=timezone.utc))
    try:
        store = str(uuid4())
        load_into(warehouse, planted_store(store, clock))
        (result,) = jobs.JOB.run(warehouse, app, clock.now())
        assert result.store_id == store and len(result.issued) == 1
        assert app.repository.get(diagnosis_id(UUID(store))).last_run["run_id"] == result.run_id
    finally:
        warehouse.close()
        app.close()
