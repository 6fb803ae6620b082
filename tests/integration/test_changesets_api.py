"""ChangeSets end to end through the admin and storefront APIs, on the real event store (SQLite and
PostgreSQL), the read model, the telemetry log and the DuckDB warehouse: draft (from a recommendation
or by hand), submit, guardrails (blocked, with the reason and the adjustment; forced with a recorded
confirmation), approve, flags and exposures, the playbook behaviour of the cart, the decider's
automatic rollback within one tick, and the audit trail as JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from autopilot.decider_job import TickSettings, record_second_opinions, tick_store
from autopilot.stats.hierarchical import HierarchicalLift
from autopilot.flags.assignment import FlagRule, assign
from autopilot.flags.exposures import append_exposures, exposure_row
from autopilot.simulator import SystemClock, load_into
from commands.context import StoreContext
from queries.attribution import attribution_report
from queries.changesets import ChangeSetQueries
from tests.api.conftest import api_settings, open_api_store
from tests.conftest import make_config
from tests.integration.test_diagnosis_api import planted_store

SHIPPING_FLAG = "checkout.shipping_estimate_on_cart"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def autopilot_api(request, tmp_path):
    from tests.conftest import create_pg_database, drop_pg_database

    pg_name = create_pg_database() if request.param == "postgres" else None
    services = build_services(api_settings(make_config(request.param, tmp_path, pg_name, pool_size=10),
                                           warehouse_path=str(tmp_path / "warehouse.duckdb")))
    store = open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield client, services, store
    if pg_name:
        drop_pg_database(pg_name)


def _contract(changes: list[dict] | None = None, flag_key: str = "pricing.mug_discount", holdout: float = 50.0) -> dict:
    return {
        "hypothesis": {"problem": "mugs do not sell", "expected_outcome": "a discount sells more mugs",
                       "confidence": "low", "data_evidence": [{"metric": "mug_conversion", "value": 0.01}]},
        "action_plan": {"type": "feature_flag", "target_segment": "all visitors",
                        "implementation": {"flag_key": flag_key, "changes": changes or []},
                        "rollout_strategy": "holdout", "rollout_percentage": 100 - holdout},
        "guardrails": {"profit_floor_min_margin_pct": 10, "stock_threshold": 0, "risk_level": "high"},
        "rollback_plan": {"procedure": "flag off", "estimated_rollback_time_minutes": 1},
        "proof_plan": {"primary_metrics": ["gross_profit_per_visitor"], "holdout_pct": holdout, "method": "bayesian",
                       "minimum_sample_size": 1000, "measurement_window_days": 14, "significance_threshold": 0.05},
    }


def _wait_for(client, store, path: str, predicate, attempts: int = 200):
    import time

    for _ in range(attempts):
        answer = client.get(path, headers=store.admin)
        if answer.status_code == 200 and predicate(answer.json()):
            return answer.json()
        time.sleep(0.05)
    raise AssertionError(f"{path} never satisfied the condition: {answer.status_code} {answer.text}")


def _treated_and_control(store_id: str, flag_key: str, holdout: float = 50.0) -> tuple[str, str]:
    rule = FlagRule(flag_key, 100 - holdout, holdout)
    found: dict[str, str] = {}
    for i in range(1000):
        visitor = f"v{i}"
        found.setdefault(assign(rule, store_id, visitor).variant.value, visitor)
        if "treatment" in found and "control" in found:
            return found["treatment"], found["control"]
    raise AssertionError("no visitors in both arms")


def test_recommendation_to_experiment_flags_exposures_cart_behaviour_rollback_and_audit(autopilot_api):
    client, services, store = autopilot_api
    admin = store.admin
    store_id = str(store.keys.store_id)

    # the diagnosis recommends showing shipping early; the recommendation becomes a DRAFT with its evidence
    load_into(services.warehouse, planted_store(store_id, SystemClock()))
    ran = client.post("/v1/admin/analytics/diagnosis/run", headers=admin)
    assert ran.status_code == 200, ran.text
    recommendation_id = ran.json()["issued"][0]
    drafted = client.post(f"/v1/admin/autopilot/recommendations/{recommendation_id}/draft", headers=admin,
                          params={"min_position": ran.headers["X-Trafi-Position"]})
    assert drafted.status_code == 201, drafted.text
    changeset_id = drafted.json()["changeset_id"]
    assert drafted.json()["state"] == "DRAFT"
    again = client.post(f"/v1/admin/autopilot/recommendations/{recommendation_id}/draft", headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "changeset.already_drafted"
    detail = _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}", lambda d: True)
    assert detail["recommendation_id"] == recommendation_id and detail["evidence"]["store_conversion"] > 0
    assert detail["flag_key"] == SHIPPING_FLAG and detail["contract"]["proof_plan"]["minimum_sample_size"] > 1000

    # wrong order: approving a DRAFT is a conflict that says why
    early = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=admin)
    assert early.status_code == 409 and early.json()["code"] == "changeset.not_pending_approval"

    submitted = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/submit", headers=admin)
    assert submitted.status_code == 200 and submitted.json()["state"] == "PENDING_APPROVAL"
    approved = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=admin,
                           json={"notes": "go"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "ACTIVE" and approved.json()["violations"] == []
    _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}", lambda d: d["state"] == "ACTIVE")

    # the storefront: deterministic variants, and the cart behaves differently for the treated visitor
    treated, control = _treated_and_control(store_id, SHIPPING_FLAG)
    flags = client.get("/v1/storefront/flags", params={"visitor_id": treated}, headers=store.storefront).json()
    assert flags["flags"][SHIPPING_FLAG] == {"variant": "treatment", "reason": "rollout", "changeset_id": changeset_id}
    held = client.get("/v1/storefront/flags", params={"visitor_id": control}, headers=store.storefront).json()
    assert held["flags"][SHIPPING_FLAG]["variant"] == "control"
    cart = client.post("/v1/carts", json={"currency": "EUR"}, headers=store.storefront).json()["cart_id"]
    added = client.post(f"/v1/carts/{cart}/lines", headers=store.storefront,
                        json={"product_id": str(store.shop.products["MUG-1"]), "sku": "MUG-1", "quantity": 1})
    assert added.status_code in (200, 201), added.text

    for _ in range(100):
        seen = client.get(f"/v1/carts/{cart}", params={"visitor_id": treated}, headers=store.storefront).json()
        if seen.get("lines"):
            break
    assert seen["early_shipping_estimate"] is not None and seen["early_shipping_estimate"]["amount"] > 0
    plain = client.get(f"/v1/carts/{cart}", params={"visitor_id": control}, headers=store.storefront).json()
    assert plain["early_shipping_estimate"] is None

    # first evaluations recorded exposures, once each, in the telemetry log and then the warehouse
    client.get("/v1/storefront/flags", params={"visitor_id": treated}, headers=store.storefront)
    assert services.exposures.flush()
    services.analytics.feeder.catch_up()
    with services.warehouse.reading() as cur:
        rows = cur.execute("SELECT visitor_id, variant FROM exposures WHERE store_id = ? AND flag_key = ? "
                           "ORDER BY visitor_id", [store_id, SHIPPING_FLAG]).fetchall()
    assert sorted(rows) == sorted([(treated, "treatment"), (control, "control")])

    # the merchant rolls it back: from then on every visitor gets control
    rolled = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/rollback", headers=admin,
                         json={"reason": "we changed the shipping page"})
    assert rolled.status_code == 200 and rolled.json()["state"] == "ROLLED_BACK"
    _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}", lambda d: d["state"] == "ROLLED_BACK")
    import time
    time.sleep(1.1)  # the flag rules' refresh interval
    after = client.get("/v1/storefront/flags", params={"visitor_id": treated}, headers=store.storefront).json()
    assert SHIPPING_FLAG not in after["flags"]
    assert client.get(f"/v1/carts/{cart}", params={"visitor_id": treated},
                      headers=store.storefront).json()["early_shipping_estimate"] is None

    # permanent after a rollback needs the merchant's explicit confirmation
    unconfirmed = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/make-permanent", headers=admin)
    assert unconfirmed.status_code == 422 and unconfirmed.json()["code"] == "changeset.confirmation_required"

    # the audit trail, JSON and CSV, for the ChangeSet and for the store
    audit = client.get(f"/v1/admin/autopilot/changesets/{changeset_id}/audit", headers=admin).json()
    assert [e["action"] for e in audit] == ["drafted", "submitted_for_approval", "approved", "activated",
                                            "measuring_started", "rolled_back"]
    assert audit[-1]["reason"] == "we changed the shipping page" and audit[-1]["actor_kind"] == "user"
    assert audit[-1]["previous_state"] == "MEASURING" and audit[-1]["new_state"] == "ROLLED_BACK"
    exported = client.get(f"/v1/admin/autopilot/changesets/{changeset_id}/audit?format=csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == [e["action"] for e in audit] and rows[0]["new_state"] == "DRAFT"
    store_audit = client.get("/v1/admin/autopilot/audit", headers=admin).json()
    assert {e["changeset_id"] for e in store_audit} == {changeset_id}


def test_guardrails_block_with_the_reason_and_the_passing_adjustment_and_a_forced_approval_is_recorded(autopilot_api):
    client, services, store = autopilot_api
    admin = store.admin
    policy = client.put("/v1/admin/autopilot/guardrails", headers=admin,
                        json={"margin_floor_pct": 25, "max_discount_pct": 30})
    assert policy.status_code == 200, policy.text
    assert client.get("/v1/admin/autopilot/guardrails", headers=admin).json()["margin_floor_pct"] == 25
    bad_policy = client.put("/v1/admin/autopilot/guardrails", headers=admin, json={"margin_floor_pct": 120})
    assert bad_policy.status_code == 422 and bad_policy.json()["field"].endswith("margin_floor_pct")

    created = client.post("/v1/admin/autopilot/changesets", headers=admin,
                          json={"contract": _contract([{"sku": "BOOK-1", "discount_pct": 20}])})
    assert created.status_code == 201, created.text
    changeset_id = created.json()["changeset_id"]
    client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/submit", headers=admin)

    check = client.get(f"/v1/admin/autopilot/changesets/{changeset_id}/guardrails", headers=admin).json()
    assert check["passes"] is False
    blocked = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=admin)
    assert blocked.status_code == 409 and blocked.json()["code"] == "changeset.guardrails_blocked"
    violation = blocked.json()["errors"][0]
    assert violation["reason"] == "would reduce margin on BOOK-1 to 24.3 %, below the 25 % floor"
    assert violation["code"] == "guardrail.margin_floor" and violation["sku"] == "BOOK-1"
    assert 0 < violation["max_passing_discount_pct"] < 20 and violation["adjustment"]
    assert check["violations"] == blocked.json()["errors"]

    unconfirmed = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/force-approve", headers=admin,
                              json={"guardrail_confirmation": ""})
    assert unconfirmed.status_code == 422 and unconfirmed.json()["field"].endswith("guardrail_confirmation")
    forced = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/force-approve", headers=admin,
                         json={"guardrail_confirmation": "clearance: I accept 24 % on BOOK-1"})
    assert forced.status_code == 200, forced.text
    assert forced.json()["forced"] is True and forced.json()["state"] == "ACTIVE"
    audit = _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}/audit",
                      lambda entries: any(e["action"] == "activated" for e in entries))
    approval = next(e for e in audit if e["action"] == "approved")
    assert approval["metadata"]["forced"] is True
    assert approval["metadata"]["guardrail_confirmation"] == "clearance: I accept 24 % on BOOK-1"
    assert approval["metadata"]["violations"][0]["code"] == "guardrail.margin_floor"

    # one flag, one experiment: a second ChangeSet on the same flag cannot start while the first runs
    rival = client.post("/v1/admin/autopilot/changesets", headers=admin,
                        json={"contract": _contract([{"sku": "MUG-1", "discount_pct": 5}])}).json()["changeset_id"]
    client.post(f"/v1/admin/autopilot/changesets/{rival}/submit", headers=admin)
    _wait_for(client, store, "/v1/admin/autopilot/changesets?state=ACTIVE", lambda rows: len(rows) == 1)
    conflict = client.post(f"/v1/admin/autopilot/changesets/{rival}/approve", headers=admin)
    assert conflict.status_code == 409 and conflict.json()["code"] == "changeset.flag_in_use"
    # bad input: a contract that breaks the §3 schema names the field
    broken = client.post("/v1/admin/autopilot/changesets", headers=admin, json={"contract": {"hypothesis": {}}})
    assert broken.status_code == 422 and broken.json()["code"] == "changeset.invalid_contract"
    assert broken.json()["field"].startswith("hypothesis")
    missing = client.get(f"/v1/admin/autopilot/changesets/{uuid4()}", headers=admin)
    assert missing.status_code == 404


def _load_experiment(services, store_id: str, flag_key: str, start: datetime, *, visitors: int, control_rate: float,
                     treatment_rate: float, seed: int = 3, span: timedelta = timedelta(hours=10)) -> None:
    """Exposures through the telemetry log and the feeder (as the flags endpoint records them), and paid
    orders straight into the warehouse's `orders` (as the commerce feed would have loaded them)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rule = FlagRule(flag_key, 50, 50)
    exposures, orders = [], []
    for i in range(visitors):
        visitor = f"x{i}"
        variant = assign(rule, store_id, visitor).variant.value
        if variant not in ("treatment", "control"):
            continue
        seen = start + span * (i / visitors)
        exposures.append((store_id, exposure_row(flag_key, visitor, variant, seen)))
        if rng.random() < (treatment_rate if variant == "treatment" else control_rate):
            orders.append((store_id, str(uuid4()), visitor, seen + timedelta(minutes=5)))
    append_exposures(services.telemetry, exposures)
    services.analytics.feeder.catch_up()
    with services.warehouse.writing() as cur:
        table = pa.table({"store_id": [o[0] for o in orders], "order_id": [o[1] for o in orders],
                          "visitor_id": [o[2] for o in orders],
                          "placed_at": [o[3].replace(tzinfo=None) for o in orders]})
        cur.register("new_orders", table)
        cur.execute("INSERT INTO orders (store_id, order_id, visitor_id, placed_at, day, currency, revenue_minor, "
                    "tax_minor, cogs_minor, discount_minor, shipping_subsidy_minor, payment_fee_minor, refunded_minor, "
                    "paid_at) SELECT store_id, order_id, visitor_id, placed_at, CAST(placed_at AS DATE), 'EUR', 4000, "
                    "700, 1800, 0, 0, 81, 0, placed_at FROM new_orders")
        cur.unregister("new_orders")


def _start_experiment(client, store, flag_key: str) -> str:
    """A merchant's ChangeSet on `flag_key`, drafted, submitted and approved: ACTIVE in the read model."""
    admin = store.admin
    created = client.post("/v1/admin/autopilot/changesets", headers=admin, json={"contract": _contract(flag_key=flag_key)})
    changeset_id = created.json()["changeset_id"]
    client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/submit", headers=admin)
    assert client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=admin).status_code == 200
    _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}", lambda d: d["state"] == "ACTIVE")
    return changeset_id


def test_a_harmful_change_is_rolled_back_by_the_decider_within_one_tick(autopilot_api):
    client, services, store = autopilot_api
    admin = store.admin
    store_id = str(store.keys.store_id)
    flag_key = "checkout.trust_badges"
    changeset_id = _start_experiment(client, store, flag_key)
    started = datetime.now(timezone.utc)

    # treatment converts at a third of control's rate: a clear harm
    _load_experiment(services, store_id, flag_key, started, visitors=6000, control_rate=0.09, treatment_rate=0.03)
    now = started + timedelta(hours=12)
    with services.warehouse.reading() as cur:
        outcome = tick_store(cur, services.bus, services.views, UUID(store_id), now, TickSettings())
    decision = outcome["decisions"][0]
    assert decision["action"] == "rollback", decision
    assert decision["action"] == "rollback" and decision["rule"].startswith("K1") and decision["state"] == "ROLLED_BACK"

    detail = _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}",
                       lambda d: d["state"] == "ROLLED_BACK")
    numbers = detail["latest_decision"]["numbers"]
    assert numbers["n_treatment"] > 1000 and numbers["upper"] < 0 and numbers["srm_p"] is not None
    audit = client.get(f"/v1/admin/autopilot/changesets/{changeset_id}/audit", headers=admin).json()
    assert [e["action"] for e in audit][-3:] == ["decision_recorded", "measuring_started", "rolled_back"]
    assert audit[-1]["actor_kind"] == "autopilot" and "K1" in audit[-1]["reason"]
    metrics = client.get(f"/v1/admin/autopilot/changesets/{changeset_id}/metrics", headers=admin).json()
    assert metrics["latest_decision"]["action"] == "rollback"

    # the automatic rollback is an event other parts react to: the outbound webhook topic
    import time
    time.sleep(1.1)
    visitor = _treated_and_control(store_id, flag_key)[0]
    flags = client.get("/v1/storefront/flags", params={"visitor_id": visitor}, headers=store.storefront).json()
    assert flag_key not in flags["flags"]


def test_an_unanswered_approval_request_expires_at_the_next_tick(autopilot_api):
    client, services, store = autopilot_api
    created = client.post("/v1/admin/autopilot/changesets", headers=store.admin,
                          json={"contract": _contract(flag_key="checkout.guest_default")})
    changeset_id = created.json()["changeset_id"]
    client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/submit", headers=store.admin,
                json={"expires_in_days": 1})
    _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}",
              lambda d: d["state"] == "PENDING_APPROVAL")
    later = datetime.now(timezone.utc) + timedelta(days=1, minutes=1)
    with services.warehouse.reading() as cur:
        outcome = tick_store(cur, services.bus, services.views, store.keys.store_id, later, TickSettings())
    assert outcome["expired"] == [changeset_id]
    detail = _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}",
                       lambda d: d["state"] == "EXPIRED")
    assert detail["approval_status"] == "expired"
    refused = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=store.admin)
    assert refused.status_code == 409


def test_a_viewer_sees_changesets_but_cannot_approve(autopilot_api):
    client, services, store = autopilot_api
    from commands.admin_users import CreateAdminUser
    from commands.sessions import SignInAdmin
    from domain import tokens

    email = f"viewer-{uuid4().hex[:6]}@example.com"
    services.bus.execute(CreateAdminUser(email=email, password="viewer-password-1", role="viewer",
                                         acting_role="owner"), StoreContext(store.keys.store_id, actor="test"))
    session_id = uuid4()
    token = services.token("as", session_id)
    services.bus.execute(SignInAdmin(email=email, password="viewer-password-1", session_id=session_id,
                                     token_hash=tokens.token_hash(token)), StoreContext(store.keys.store_id))
    viewer = {"Authorization": f"Bearer {token}"}
    created = client.post("/v1/admin/autopilot/changesets", headers=store.admin,
                          json={"contract": _contract(flag_key="checkout.guest_default")})
    changeset_id = created.json()["changeset_id"]
    assert client.get("/v1/admin/autopilot/changesets", headers=viewer).status_code == 200
    refused = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=viewer)
    assert refused.status_code == 403 and refused.json()["code"] == "auth.forbidden"


@pytest.mark.slow  # compiles the PyMC model (seconds)
def test_a_winning_change_is_proven_after_the_minimum_runtime_and_attributed(autopilot_api):
    client, services, store = autopilot_api
    admin = store.admin
    store_id = str(store.keys.store_id)
    flag_key = "checkout.guest_default"
    changeset_id = _start_experiment(client, store, flag_key)
    started = datetime.now(timezone.utc)
    _load_experiment(services, store_id, flag_key, started, visitors=8000, control_rate=0.05, treatment_rate=0.10,
                     span=timedelta(days=8))
    settings = TickSettings(minimum_runtime_days=7)

    with services.warehouse.reading() as cur:  # a strong effect, but not before the minimum runtime
        early = tick_store(cur, services.bus, services.views, UUID(store_id), started + timedelta(days=3), settings)
    assert early["decisions"][0]["action"] == "continue", early

    # the hierarchical second opinion (compiled once, refitted): recorded beside the verdict, never acted on
    _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}",
              lambda d: d["latest_decision"] is not None and d["state"] == "MEASURING")
    opinions = record_second_opinions(services.bus, services.views, started + timedelta(days=3),
                                      model=HierarchicalLift().compile())
    assert [o["changeset_id"] for o in opinions] == [changeset_id]
    detail = _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}",
                       lambda d: d["second_opinion"] is not None)
    opinion = detail["second_opinion"]
    assert opinion["pool"] == flag_key and opinion["pool_size"] == 1
    assert 0 < opinion["shrunken_lift"] < opinion["observed_lift"]  # pulled toward the playbook's prior mean 0
    assert detail["state"] == "MEASURING"
    with services.warehouse.reading() as cur:
        later = tick_store(cur, services.bus, services.views, UUID(store_id), started + timedelta(days=8, hours=1),
                           settings)
    assert later["decisions"][0]["action"] == "prove" and later["decisions"][0]["state"] == "PROVEN", later
    detail = _wait_for(client, store, f"/v1/admin/autopilot/changesets/{changeset_id}", lambda d: d["state"] == "PROVEN")
    assert detail["proof_result"]["lower"] > 0 and detail["proof_result"]["control_mean"] > 0

    attribution = client.get("/v1/admin/autopilot/attribution", headers=admin)
    assert attribution.status_code == 200 and attribution.json()["proven_experiments"] == 1
    # ten days after the start (the proof is two days old then): lower bound × baseline × treated traffic
    report = attribution_report(ChangeSetQueries(services.views), StoreContext(UUID(store_id)),
                                started + timedelta(days=10), days=30)
    item = report["changesets"][0]
    assert item["changeset_id"] == changeset_id and item["reason"] == "counted"
    assert 0 < item["uplift"]["amount"] < item["point_estimate"]["amount"]  # conservative: never the point estimate
    assert report["totals"] == [item["uplift"]]
    assert report["cumulative"][-1]["cumulative"]["amount"] >= item["uplift"]["amount"]  # to the end of that day
    assert report["cumulative"][0]["cumulative"]["amount"] == 0

    # PROVEN → PERMANENT needs no extra confirmation; the flag then serves treatment to everyone
    kept = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/make-permanent", headers=admin)
    assert kept.status_code == 200 and kept.json()["state"] == "PERMANENT"
