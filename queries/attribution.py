"""Attribution (AUTOPILOT.md §8) as the admin sees it: what the proven ChangeSets earned, conservatively.

Reads the read model `changesets` (each proven ChangeSet's proof numbers: the lift's lower bound,
the control arm's gross profit per visitor, the treated visitors and the runtime) and applies the
pure rules of autopilot/attribution.py: lower bound × baseline × treated traffic, from the proof on,
rounded down; a ChangeSet never proven (or made permanent after a rollback) counts 0.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from autopilot.attribution import ChangeSetResult, attributed_uplift, cumulative_improvement
from commands.context import StoreContext
from queries.changesets import SHIPPED_STATES, ChangeSetQueries


def _result(detail, currency: str) -> ChangeSetResult:
    proof = detail.proof_result or {}
    runtime_days = ((detail.ended_at - detail.started_at).total_seconds() / 86400
                    if detail.ended_at and detail.started_at else 0.0)
    treated = float(proof.get("n_treatment", 0.0))
    return ChangeSetResult(
        changeset_id=str(detail.changeset_id), state=detail.state,
        proven_at=detail.ended_at if proof else None, lift_lower_bound=proof.get("lower"),
        baseline_gpv_minor=float(proof.get("control_mean") or 0.0),
        # the treated traffic after the proof is assumed to run at the experiment's pace, scaled from
        # the treated arm to everyone outside the global holdout: conservative, it ignores growth
        treated_visitors_per_day=(treated / runtime_days * 100 / max(detail.rollout_pct, 1e-9)
                                  if runtime_days > 0 else 0.0),
        currency=currency, lift_point_estimate=proof.get("delta"),
    )


def _currency(queries: ChangeSetQueries, ctx: StoreContext) -> str:
    with queries.views.read() as tx:
        row = tx.execute("SELECT currency FROM rm_dashboard_stores WHERE store_id = %s", (str(ctx.store_id),)).fetchone()
    return row[0] if row else "EUR"


def attribution_report(queries: ChangeSetQueries, ctx: StoreContext, now: datetime, *, days: int = 90,
                       min_position: int | None = None) -> dict:
    currency = _currency(queries, ctx)
    shipped = queries.list(ctx, states=list(SHIPPED_STATES), min_position=min_position)
    results = [_result(queries.detail(ctx, s.changeset_id), currency) for s in shipped]
    start = now - timedelta(days=days)
    report = attributed_uplift(results, start, now)
    first: date = start.date()
    series = cumulative_improvement(results, [first + timedelta(days=i) for i in range((now.date() - first).days + 1)])
    return {
        **report.as_numbers(),
        "currency": currency,
        "proven_experiments": sum(1 for r in results if r.proven_at is not None),
        "cumulative": [{"day": point.day.isoformat(), "cumulative": {"amount": point.cumulative_minor,
                                                                     "currency": currency}} for point in series],
    }
