"""From a diagnosis recommendation to a ChangeSet contract (AUTOPILOT.md §2 → §3).

Pure: the recommendation (autopilot/diagnosis/recommend.py) already names the playbook, its
flag, workflow or price change, the problem in words and the evidence; this fills the rest of
the contract with the defaults a careful merchant would choose — a 50 % holdout, gross profit
per visitor as the primary metric, conversion and checkout errors as guards, auto-rollback on
a deviation worse than 5 %, and a minimum sample from the decider's power calculator
(autopilot/stats/power.py `minimum_sample_for_plan`) at the store's own conversion rate.
"""

from __future__ import annotations

from autopilot.stats.power import minimum_sample_for_plan

DEFAULT_HOLDOUT_PCT = 50.0  # the control arm: an even split measures fastest
MINIMUM_DETECTABLE_LIFT = 0.10  # +10 % conversion: what the sample size is planned for
MEASUREMENT_WINDOW_DAYS = 14
FALLBACK_CONVERSION = 0.02  # when the diagnosis had no conversion to go by
CONFIDENCE_BY_RISK = {"low": "medium", "medium": "medium", "high": "low"}
DEFAULT_MARGIN_FLOOR_PCT = 20.0


def _implementation(recommendation: dict, skus: list[str]) -> tuple[str, dict]:
    implementation = recommendation.get("implementation", {})
    method = implementation.get("method")
    if method == "feature_flag":
        return "feature_flag", {"flag_key": implementation["flag_key"], "changes": []}
    if method == "workflow":
        workflow = implementation.get("workflow") or recommendation["playbook"]
        return "workflow", {"flag_key": f"workflow.{workflow}", "workflow_id": workflow, "changes": []}
    if method == "price_change":
        # A price change is a flag too (treated visitors see the discount); its SKUs are what the
        # guardrails check, so they are listed one by one.
        pct = round(float(implementation.get("discount_rate", 0.1)) * 100, 2)
        change = implementation.get("change", recommendation["playbook"])
        return "feature_flag", {"flag_key": f"pricing.{change}",
                                "changes": [{"sku": sku, "discount_pct": pct} for sku in skus]}
    raise ValueError(f"unknown playbook method {method!r}")


def contract_for(recommendation: dict, *, skus: list[str] = ()) -> dict:
    """The ChangeSet contract for a recommendation; `skus` are the products a price change applies to."""
    evidence = recommendation.get("evidence", {})
    action_type, implementation = _implementation(recommendation, list(skus))
    conversion = float(evidence.get("store_conversion") or 0) or FALLBACK_CONVERSION
    conversion = min(max(conversion, 0.001), 0.5)
    # sized for the decider's own rules (anytime-valid kill and proof), not a one-look z-test
    per_arm = minimum_sample_for_plan(conversion, MINIMUM_DETECTABLE_LIFT).units_per_arm
    finding = evidence.get("finding", {})
    points = [{"metric": "store_conversion", "value": conversion}]
    if "relative_drop" in finding and isinstance(finding["relative_drop"], dict):
        points.append({"metric": f"drop_off_change:{recommendation.get('step', 'step')}",
                       "value": float(finding["relative_drop"].get("median", 0.0))})
    risk = recommendation.get("risk", "medium")
    return {
        "hypothesis": {
            "problem": recommendation["problem"],
            "expected_outcome": f"{recommendation['title']}: more visitors past {recommendation.get('step', 'the step')}"
                                f" and more gross profit per visitor",
            "confidence": CONFIDENCE_BY_RISK.get(risk, "low"),
            "data_evidence": points,
        },
        "action_plan": {
            "type": action_type,
            "target_segment": _segment_label(recommendation.get("target_segment") or {}),
            "implementation": implementation,
            "rollout_strategy": "holdout",
            "rollout_percentage": 100.0 - DEFAULT_HOLDOUT_PCT,
        },
        "guardrails": {
            "profit_floor_min_margin_pct": DEFAULT_MARGIN_FLOOR_PCT,
            "stock_threshold": 0,
            "slo_requirements": {"event_delivery_ratio": 0.995, "job_success_ratio": 0.999},
            "risk_level": risk,
            "blocked_conditions": ["checkout incident open", "sample ratio mismatch"],
        },
        "rollback_plan": {
            "auto_rollback_triggers": [
                {"metric": "gross_profit_per_visitor", "threshold": 0.0, "direction": "below"},
                {"metric": "conversion", "threshold": 0.0, "direction": "below"},
                {"metric": "checkout_errors", "threshold": 0.0, "direction": "above"},
                {"metric": "primary_lift", "threshold": -0.05, "direction": "below"},
            ],
            "manual_rollback_enabled": True,
            "procedure": "turn the flag back to control for every visitor (one decider tick at most)",
            "estimated_rollback_time_minutes": 1,
        },
        "proof_plan": {
            "primary_metrics": ["gross_profit_per_visitor"],
            "secondary_metrics": ["conversion", "checkout_errors", "margin_rate"],
            "holdout_pct": DEFAULT_HOLDOUT_PCT,
            "method": "bayesian",
            "minimum_sample_size": per_arm,
            "measurement_window_days": MEASUREMENT_WINDOW_DAYS,
            "significance_threshold": 0.05,
        },
    }


def _segment_label(segment: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(segment.items())) or "all visitors"
