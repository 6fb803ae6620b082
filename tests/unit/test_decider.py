"""The decider tick (AUTOPILOT.md §7): each rule fires on inputs built for it, and the order holds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from autopilot.decider import (
    CHECKOUT_ERRORS,
    CONVERSION,
    DataHealth,
    Exposures,
    MetricArms,
    ProofPlan,
    TickInputs,
    decide,
    hard_guardrails,
)
from autopilot.guardrails import RULE_MARGIN_FLOOR, Violation
from autopilot.stats.sufficient import ArmStats

HEALTHY = DataHealth(event_delivery_ratio=1.0, job_success_ratio=1.0, checkout_incident=False, hours_since_last_data=1.0)


def _visitors(rng: np.random.Generator, n: int, conversion: float, error_rate: float) -> dict[str, ArmStats]:
    """Per-visitor conversion, gross profit (skewed, only when converting) and checkout errors."""
    converted = (rng.random(n) < conversion).astype(float)
    profit = converted * rng.lognormal(mean=3.0, sigma=0.6, size=n)
    errors = (rng.random(n) < error_rate).astype(float)
    return {
        "profit": ArmStats.from_values(profit),
        "conversion": ArmStats.from_values(converted),
        "errors": ArmStats.from_values(errors),
    }


def _inputs(
    treatment: dict[str, ArmStats],
    control: dict[str, ArmStats],
    *,
    runtime_days: float = 10.0,
    method: str = "bayesian",
    n_star: float | None = None,
    **overrides,
) -> TickInputs:
    profit = MetricArms(treatment["profit"], control["profit"])
    n_t, n_c = treatment["profit"].n, control["profit"].n
    inputs = TickInputs(
        primary=profit,
        guardrail_metrics=hard_guardrails(
            profit,
            MetricArms(treatment["conversion"], control["conversion"]),
            MetricArms(treatment["errors"], control["errors"]),
        ),
        planned_split=(0.5, 0.5),
        exposures=Exposures(n_t, n_c, 0),
        health=HEALTHY,
        plan=ProofPlan(method=method, n_star=n_star if n_star is not None else float(n_t + n_c)),
        runtime_days=runtime_days,
        data_watermark="2026-11-21T15:00:00Z",
    )
    return dataclasses.replace(inputs, **overrides)


def _arms(seed: int, n: int, conv_t: float, conv_c: float, err_t: float = 0.02, err_c: float = 0.02):
    rng = np.random.default_rng(seed)
    return _visitors(rng, n, conv_t, err_t), _visitors(rng, n, conv_c, err_c)


@pytest.fixture(scope="module")
def neutral():
    return _arms(1, 4000, 0.05, 0.05)


@pytest.fixture(scope="module")
def harmful():
    return _arms(2, 20000, 0.035, 0.05)


@pytest.fixture(scope="module")
def good():
    return _arms(3, 20000, 0.06, 0.05)


def _violation() -> Violation:
    return Violation(rule=RULE_MARGIN_FLOOR, sku="SKU-1", message="below floor", actual=10, limit=20)


# --- 1. invariants ----------------------------------------------------------------------------


def test_a_guardrail_violation_reverts_a_live_change_and_beats_everything(harmful):
    broken = dataclasses.replace(HEALTHY, checkout_incident=True)
    decision = decide(_inputs(*harmful, violations=(_violation(),), health=broken))
    assert (decision.action, decision.rule) == ("revert", f"invariant:{RULE_MARGIN_FLOOR}")


def test_a_violation_blocks_a_change_not_yet_live(neutral):
    decision = decide(_inputs(*neutral, violations=(_violation(),), change_is_live=False))
    assert (decision.action, decision.rule) == ("block", f"invariant:{RULE_MARGIN_FLOOR}")


def test_an_expired_changeset_is_reverted(neutral):
    decision = decide(_inputs(*neutral, changeset_expired=True))
    assert (decision.action, decision.rule) == ("revert", "invariant:changeset_ttl")


# --- 2. execution gate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"health": dataclasses.replace(HEALTHY, event_delivery_ratio=0.99)}, "gate:event_delivery"),
        ({"health": dataclasses.replace(HEALTHY, job_success_ratio=0.998)}, "gate:job_success"),
        ({"health": dataclasses.replace(HEALTHY, checkout_incident=True)}, "gate:checkout_incident"),
        ({"health": dataclasses.replace(HEALTHY, hours_since_last_data=30.0)}, "gate:no_data"),
        ({"exposures": Exposures(20000, 20000, 1000)}, "gate:multiple_exposures"),
        ({"planned_split": (0.6, 0.4)}, "gate:srm"),
    ],
)
def test_broken_data_holds_even_with_a_clear_harm(harmful, change, rule):
    assert decide(_inputs(*harmful)).action == "rollback"  # the harm is clear on healthy data
    decision = decide(_inputs(*harmful, **change))
    assert (decision.action, decision.rule) == ("hold", rule)


def test_thresholds_are_inclusive_on_the_healthy_side(neutral):
    edge = DataHealth(0.995, 0.999, False, 23.9)
    exposures = Exposures(4000, 4000, 80)  # 80 / 8080 < 1 %
    assert decide(_inputs(*neutral, health=edge, exposures=exposures)).rule == "continue"


# --- 3. minimum data --------------------------------------------------------------------------


def test_fewer_than_100_units_per_arm_holds():
    treatment, control = _arms(4, 99, 0.3, 0.3, 0.2, 0.2)
    decision = decide(_inputs(treatment, control))
    assert (decision.action, decision.rule) == ("hold", "min_data")


def test_a_rare_guardrail_waits_for_data_without_holding_the_experiment():
    # 500 visitors per arm with a 0.2 % error rate: n·p ≈ 1 < 5 — checkout errors cannot judge yet
    treatment, control = _arms(5, 500, 0.2, 0.2, 0.002, 0.002)
    decision = decide(_inputs(treatment, control))
    assert decision.rule != "min_data" and not decision.rule.startswith(f"K1:{CHECKOUT_ERRORS}")
    assert CHECKOUT_ERRORS in decision.numbers["guardrails_waiting_for_data"]
    assert CHECKOUT_ERRORS not in decision.numbers["guardrails"]


# --- 4. kill ----------------------------------------------------------------------------------


def test_a_clearly_harmful_treatment_is_rolled_back(harmful):
    decision = decide(_inputs(*harmful, runtime_days=2.0))
    assert decision.action == "rollback"
    assert decision.rule in {"K1:gross_profit_per_visitor", f"K1:{CONVERSION}", "K2"}


def test_more_checkout_errors_is_a_k1_harm():
    # conversion and profit unchanged, errors double: the lower-is-better guardrail must fire
    treatment, control = _arms(6, 20000, 0.05, 0.05, 0.04, 0.02)
    decision = decide(_inputs(treatment, control, runtime_days=2.0))
    assert (decision.action, decision.rule) == ("rollback", f"K1:{CHECKOUT_ERRORS}")
    assert decision.numbers["guardrails"][CHECKOUT_ERRORS]["upper"] < 0


def test_k2_fires_on_the_primary_when_no_guardrail_does(harmful):
    treatment, control = harmful
    # the guardrails watch other, flat data: only the primary rule K2 can see the harm
    flat_t, flat_c = _arms(7, 20000, 0.05, 0.05)
    inputs = _inputs(treatment, control, runtime_days=2.0)
    inputs = dataclasses.replace(
        inputs,
        guardrail_metrics=hard_guardrails(
            MetricArms(flat_t["profit"], flat_c["profit"]),
            MetricArms(flat_t["conversion"], flat_c["conversion"]),
            MetricArms(flat_t["errors"], flat_c["errors"]),
        ),
    )
    decision = decide(inputs)
    assert (decision.action, decision.rule) == ("rollback", "K2")
    assert decision.numbers["upper"] < -0.05


# --- 5. prove ---------------------------------------------------------------------------------


def test_a_clearly_good_treatment_is_proven_after_the_minimum_runtime_and_not_before(good):
    before = decide(_inputs(*good, runtime_days=6.9))
    after = decide(_inputs(*good, runtime_days=7.0))
    assert before.action == "continue"
    assert (after.action, after.rule) == ("prove", "prove:bayesian")
    assert after.numbers["prob_positive"] >= 0.95
    assert after.numbers["expected_loss"] <= 0.0025


def test_frequentist_proof_needs_a_positive_lower_bound(good):
    decision = decide(_inputs(*good, method="frequentist"))
    assert (decision.action, decision.rule) == ("prove", "prove:frequentist")
    assert decision.numbers["lower"] > 0


def test_a_proportion_primary_uses_the_beta_posterior(good):
    treatment, control = good
    inputs = _inputs(treatment, control, primary=MetricArms(treatment["conversion"], control["conversion"], True))
    decision = decide(inputs)
    assert (decision.action, decision.rule) == ("prove", "prove:bayesian")


# --- 6. continue / futility -------------------------------------------------------------------


def test_a_neutral_treatment_continues(neutral):
    assert decide(_inputs(*neutral)).action == "continue"


def test_futility_stops_when_even_the_upper_bound_is_not_worth_keeping():
    treatment, control = _arms(8, 20000, 0.05, 0.05)
    plan = ProofPlan(method="bayesian", n_star=40000, smallest_lift_worth_keeping=0.3)
    decision = decide(_inputs(treatment, control, plan=plan, runtime_days=3.0))
    assert (decision.action, decision.rule) == ("stop_futile", "futility")


# --- anytime validity -------------------------------------------------------------------------


def test_an_aa_test_peeked_at_ten_times_rarely_rolls_back():
    alpha, runs, looks, per_look = 0.05, 100, 10, 500
    false_kills = 0
    for seed in range(runs):
        rng = np.random.default_rng(1000 + seed)
        treatment = control = None
        for look in range(1, looks + 1):
            batch_t, batch_c = _visitors(rng, per_look, 0.05, 0.02), _visitors(rng, per_look, 0.05, 0.02)
            treatment = batch_t if treatment is None else {k: treatment[k] + batch_t[k] for k in batch_t}
            control = batch_c if control is None else {k: control[k] + batch_c[k] for k in batch_c}
            # runtime below the minimum: this measures the kill rules alone
            decision = decide(
                _inputs(treatment, control, runtime_days=look * 0.5, n_star=2 * looks * per_look), alpha=alpha
            )
            if decision.action == "rollback":
                false_kills += 1
                break
    assert false_kills / runs <= alpha + 0.03


# --- the record -------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["neutral", "harmful", "good", "invariant", "gate"])
def test_numbers_are_json_serialisable_and_carry_the_rule(scenario, neutral, harmful, good):
    data = {"neutral": neutral, "harmful": harmful, "good": good, "invariant": neutral, "gate": neutral}[scenario]
    extra = {
        "invariant": {"violations": (_violation(),)},
        "gate": {"health": dataclasses.replace(HEALTHY, checkout_incident=True)},
    }.get(scenario, {})
    decision = decide(_inputs(*data, **extra))
    record = json.loads(json.dumps(decision.numbers, allow_nan=False))
    assert record["rule"] == decision.rule
    assert record["action"] == decision.action
    assert record["data_watermark"] == "2026-11-21T15:00:00Z"
    for key in ("n_star", "srm_p", "n_treatment", "n_control"):
        assert key in record
    if scenario in {"neutral", "harmful", "good"}:
        for key in ("delta", "sigma", "lower", "upper"):
            assert key in record


def test_a_covariate_that_explains_everything_holds_instead_of_failing():
    rng = np.random.default_rng(5)
    y_t, y_c = rng.lognormal(3, 0.6, 500), rng.lognormal(3, 0.6, 500)
    exact = MetricArms(ArmStats.from_values(y_t, x=0.5 * y_t), ArmStats.from_values(y_c, x=0.5 * y_c))
    inputs = TickInputs(primary=exact, guardrail_metrics=hard_guardrails(exact, exact, exact), planned_split=(0.5, 0.5),
                        exposures=Exposures(500, 500, 0), health=HEALTHY, plan=ProofPlan("bayesian", 1000.0),
                        runtime_days=10.0)
    decision = decide(inputs)
    assert decision.action == "hold" and decision.rule == "min_data"
    assert "CUPED" in decision.reason
