"""From a finding to a recommendation candidate: the playbook of its likeliest cause, its worth, its risk.

A candidate is plain data (it travels in a command and an event): title, problem, expected
impact (gross profit per month and conversion, each low/typical/high), risk, implementation
(a flag and its key, a workflow, a price change), the target segment, and every number of the
finding behind it — what the next step (a ChangeSet draft) needs. `score` ranks candidates:
expected gross profit per month (typical) × the risk weight of the data file.
"""

from __future__ import annotations

from autopilot.diagnosis.benchmarks import Benchmarks
from autopilot.diagnosis.causes import RankedCause, rank_causes
from autopilot.diagnosis.counts import Economics, FunnelCounts, Period
from autopilot.diagnosis.detect import Finding
from autopilot.diagnosis.impact import expected_impact
from autopilot.diagnosis.segments import Segment
from autopilot.diagnosis.settings import DiagnosisSettings
from autopilot.diagnosis.stats import Summary


def recommendation_key(playbook: str, segment: Segment) -> str:
    """What makes two recommendations "the same": the playbook and the segment it targets."""
    return f"{playbook}:{segment.key}"


def downstream_conversion(counts: FunnelCounts, finding: Finding, settings: DiagnosisSettings) -> float:
    """P(order | reached the step after the lost one), for the finding's segment when it has the visitors."""
    window = "baseline" if finding.basis == "history" else "recent"
    after = finding.step + 1
    for segment in (finding.segment, Segment()):
        reached = counts.reached(window, segment)
        if reached[after] >= settings.min_trials or segment.is_store:
            return (reached[-1] + 1) / (reached[after] + 2)  # posterior mean, uniform prior
    raise AssertionError("unreachable")


def store_conversion(counts: FunnelCounts) -> float:
    store = counts.reached("recent", Segment()) + counts.reached("baseline", Segment())
    return float(store[-1] / store[0]) if store[0] else 0.0


def candidate(finding: Finding, *, counts: FunnelCounts, economics: Economics, period: Period,
              benchmarks: Benchmarks, settings: DiagnosisSettings) -> dict | None:
    """The recommendation for a finding, or None when no playbook fits or it is worth nothing."""
    causes = rank_causes(finding.step_name, finding.segment, benchmarks)
    cause = next((c for c in causes if c.playbook), None)
    if cause is None:
        return None
    playbook = benchmarks.playbooks[cause.playbook]
    days = period.recent_days
    per_day = finding.recent.reached / days
    lost_per_day = Summary(finding.gap.median * per_day, finding.gap.low * per_day, finding.gap.high * per_day)
    downstream = downstream_conversion(counts, finding, settings)
    conversion = store_conversion(counts)
    impact = expected_impact(
        lost_per_day=lost_per_day, recovery=playbook.recovery_share, downstream=downstream, economics=economics,
        margin_cost_rate=playbook.margin_cost_rate,
        visitors_per_day=counts.reached("recent", Segment())[0] / days, store_conversion=conversion,
        days_per_month=settings.days_per_month,
    )
    basis = "gross_profit" if impact.typical_profit is not None else "orders"
    worth = impact.typical_profit if basis == "gross_profit" else impact.orders_per_month[1]
    score = worth * benchmarks.risk_weight[playbook.risk]
    if score <= 0:
        return None
    return {
        "key": recommendation_key(playbook.key, finding.segment),
        "playbook": playbook.key,
        "title": playbook.title,
        "problem": problem_text(finding, cause, period),
        "step": finding.step_name,
        "target_segment": finding.segment.as_dict(),
        "expected_impact": impact.as_dict(),
        "risk": playbook.risk,
        "implementation": dict(playbook.implementation),
        "likely_cause": cause.as_dict(),
        "causes": [c.as_dict() for c in causes],
        "score": round(float(score), 2),
        "score_basis": basis,
        "evidence": {
            "period": period.as_dict(),
            "finding": finding.as_dict(),
            "downstream_conversion": round(downstream, 4),
            "store_conversion": round(conversion, 5),
            "recovery_share": {"low": playbook.recovery_share.low, "typical": playbook.recovery_share.typical,
                               "high": playbook.recovery_share.high},
            "economics": {"paid_orders": economics.orders, "currency": economics.currency,
                          "gross_profit_per_order_minor": _rounded(economics.profit_per_order),
                          "revenue_per_order_minor": _rounded(economics.revenue_per_order),
                          "margin_cost_rate": playbook.margin_cost_rate},
        },
    }


def _rounded(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def problem_text(finding: Finding, cause: RankedCause, period: Period) -> str:
    who = "Across the whole store" if finding.segment.is_store else f"For {finding.segment.label}"
    recent = finding.recent
    said = (f"{who}, {recent.observed:.1%} of the {recent.reached} visitors who reached {finding.step_name} went on "
            f"to {finding.next_step} from {period.recent_start} to {period.recent_end}")
    drop = finding.relative_drop
    interval = f"({drop.median:.0%} lower; 95 % credible interval {drop.low:.0%} to {drop.high:.0%})"
    if finding.compared_kind == "baseline":
        against = f", against {finding.compared_value:.1%} in the {period.baseline_days} days before {interval}"
    elif finding.compared_kind == "rest_of_store":
        against = (f", against {finding.compared_value:.1%} for the rest of the store {interval}; the store as a whole "
                   f"is below the reference range for this step (low {finding.reference.low:.0%})")
    else:
        against = (f", below the reference range for this step (low {finding.reference.low:.0%}, "
                   f"typical {finding.reference.typical:.0%}) {interval}")
    return f"{said}{against}: about {finding.excess:.0f} visitors lost. Likely cause: {cause.label}."
