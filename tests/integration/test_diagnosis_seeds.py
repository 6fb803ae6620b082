"""The diagnosis over simulated stores in a real DuckDB warehouse: it finds a planted problem (step and
segment), leaves healthy stores alone over many seeds, and falls back to the reference for a new store."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from uuid import NAMESPACE_DNS, uuid5

import duckdb
import pytest

from autopilot.diagnosis.engine import diagnose
from autopilot.simulator import PlantedProblem, Simulation, StoreProfile, load_into

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 1, 3, 0, tzinfo=timezone.utc)  # the run looks at whole days up to END
RECENT_START = END - timedelta(days=6)
SEEDS = 30
MOBILE_FR = {"device": "mobile", "country": "FR"}


def store_id(name: str, seed: int) -> str:
    return str(uuid5(NAMESPACE_DNS, f"diagnosis-{name}-{seed}"))


def simulate(con, name: str, seed: int, *, days: int = 35, **profile) -> str:
    store = store_id(name, seed)
    load_into(con, Simulation(StoreProfile(store, **profile), seed=seed, end=END, days=days))
    return store


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield con
    con.close()


def planted_shipping(multiplier: float = 0.5) -> tuple[PlantedProblem, ...]:
    return (PlantedProblem("shipping", MOBILE_FR, multiplier, RECENT_START),)


def test_a_planted_problem_is_found_at_its_step_and_segment_and_recommended(warehouse):
    store = simulate(warehouse, "planted", 1, problems=planted_shipping())
    diagnosis = diagnose(warehouse, store, NOW)
    assert diagnosis.basis == "history"
    (finding,) = diagnosis.findings
    assert (finding.step_name, finding.segment.as_dict(), finding.basis) == ("shipping", MOBILE_FR, "history")
    assert finding.probability >= finding.threshold > 0.9999  # Bonferroni over hundreds of cells
    assert 0.3 < finding.relative_drop.median < 0.7  # planted: × 0.5
    assert finding.relative_drop.low < 0.5 < finding.relative_drop.high  # the planted drop, in its interval
    evidence = finding.as_dict()
    assert evidence["vs_rest_of_store"]["rest_of_store"]["rate"] > evidence["recent"]["rate"]
    (recommendation,) = diagnosis.candidates
    assert recommendation["playbook"] == "show_shipping_cost_early"
    assert recommendation["implementation"] == {"method": "feature_flag", "flag_key": "checkout.shipping_estimate_on_cart"}
    assert recommendation["risk"] == "low" and recommendation["target_segment"] == MOBILE_FR
    profit = recommendation["expected_impact"]["gross_profit_per_month"]
    assert 0 < profit["low"] < profit["typical"] < profit["high"] and profit["currency"] == "EUR"
    assert recommendation["evidence"]["finding"]["step"] == "shipping"
    assert "mobile × FR" in recommendation["problem"] and "shipping" in recommendation["problem"]


def test_a_store_wide_drop_is_found_for_the_whole_store(warehouse):
    store = simulate(warehouse, "store-wide", 2, visitors_per_day=1500,
                     problems=(PlantedProblem("checkout_start", {}, 0.75, RECENT_START),))
    findings = diagnose(warehouse, store, NOW).findings
    assert [(f.step_name, f.segment.as_dict()) for f in findings] == [("checkout_start", {})]


def test_a_new_store_is_judged_against_the_reference_only(warehouse):
    rates = {"visit": 0.60, "product_view": 0.16, "add_to_cart": 0.50, "checkout_start": 0.80, "shipping": 0.40,
             "payment": 0.88}
    bad = simulate(warehouse, "new-bad", 3, days=7, visitors_per_day=1000, rates=rates)
    good = simulate(warehouse, "new-good", 3, days=7, visitors_per_day=1000)
    diagnosis = diagnose(warehouse, bad, NOW)
    assert diagnosis.basis == "reference_only" and "history" not in diagnosis.tests
    (finding,) = diagnosis.findings
    assert (finding.basis, finding.step_name, finding.segment.is_store) == ("reference", "shipping", True)
    assert finding.compared_kind == "reference_typical" and finding.probability >= finding.threshold
    assert diagnosis.candidates[0]["playbook"] == "show_shipping_cost_early"
    assert diagnose(warehouse, good, NOW).findings == []


def test_a_store_without_data_has_nothing_to_say(warehouse):
    simulate(warehouse, "someone-else", 1, days=3, visitors_per_day=200)
    diagnosis = diagnose(warehouse, store_id("nobody", 0), NOW)
    assert diagnosis.findings == [] and diagnosis.candidates == [] and diagnosis.basis == "reference_only"
    assert all(step["recent"]["reached"] == 0 for step in diagnosis.steps)


@pytest.mark.slow
def test_healthy_stores_are_not_flagged_over_many_seeds(warehouse):
    flagged = []
    for seed in range(SEEDS):
        volume = (300, 1000, 2500, 5000)[seed % 4]
        store = simulate(warehouse, "healthy", seed, visitors_per_day=volume)
        findings = diagnose(warehouse, store, NOW).findings
        if findings:
            flagged.append((seed, volume, [(f.step_name, f.segment.key) for f in findings]))
    # Designed for at most 1 % of runs; measured 1 of 190 (docs/diagnosis.md). Two in 30 would be a warning sign.
    assert len(flagged) <= 1, flagged


@pytest.mark.slow
def test_a_planted_problem_is_found_over_many_seeds(warehouse):
    exact, missed = 0, []
    for seed in range(SEEDS):
        store = simulate(warehouse, "planted", seed, problems=planted_shipping())
        findings = diagnose(warehouse, store, NOW).findings
        if any(f.step_name == "shipping" and f.segment.as_dict() == MOBILE_FR for f in findings):
            exact += 1
        else:
            missed.append((seed, [(f.step_name, f.segment.key) for f in findings]))
        # Whatever else is found, it is never another step: the planted problem is the only one.
        assert all(f.step_name == "shipping" for f in findings), (seed, findings)
    assert exact >= SEEDS - 2, missed
