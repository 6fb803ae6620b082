"""The decider tick as a job: gather the facts of every live ChangeSet, decide, record (AUTOPILOT.md §7).

Per store, one tick:
1. expire approval requests left pending past their deadline;
2. for the store's ACTIVE and MEASURING ChangeSets, compute every arm's sufficient statistics in
   one pass over the warehouse (autopilot/warehouse/experiments.py);
3. check the guardrails against live facts (commands/guardrail_facts.py) — the invariants of §7.1;
4. apply `autopilot.decider.decide` and record each verdict with its numbers (commands.RecordDecision),
   which in the same save rolls back (the flag serves control to everyone from then on), proves, or
   starts measuring.

An automatic rollback is the `trafi.changeset.rolled_back.v1` event with the autopilot as actor:
the merchant is notified through it (outbound webhooks subscribed to `trafi.changeset.rolled_back.v1`,
the dashboard).
Scheduled in the analytics worker every TRAFI_DECIDER_INTERVAL_S (default 900 s) and on demand
(POST /v1/admin/autopilot/tick).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from autopilot.stats.bayes import LiftEstimate
from autopilot.decider import DataHealth, ProofPlan, TickInputs, decide, hard_guardrails
from autopilot.warehouse.experiments import (
    CHECKOUT_ERRORS,
    CONVERSION,
    GROSS_PROFIT_PER_VISITOR,
    ExperimentStats,
    ExperimentWindow,
    experiment_stats,
)
from autopilot.worker import register_job
from commands import changeset as cs
from commands import guardrail_facts
from commands.bus import CommandBus
from commands.context import StoreContext
from domain.changeset import ChangeSet
from domain.errors import DomainError
from domain.store import Store
from projections.views import ViewStore
from queries.changesets import EXPERIMENT_STATES, ChangeSetDetail, ChangeSetQueries, recent_daily_units

log = logging.getLogger("trafi.autopilot")

JOB_NAME = "autopilot.decider_tick"
DEFAULT_INTERVAL_S = 900.0
AUTOPILOT_ACTOR = "autopilot"


@dataclass(frozen=True)
class TickSettings:
    minimum_runtime_days: float = 7.0  # §7.5; the demo's accelerated clock shortens it
    job_success_ratio: float = 1.0  # of the pipeline jobs behind the data (the worker's own record)

    @classmethod
    def from_env(cls, env: dict | None = None) -> TickSettings:
        env = os.environ if env is None else env
        return cls(minimum_runtime_days=float(env.get("TRAFI_MINIMUM_RUNTIME_DAYS", 7.0)))


def _runtime_days(detail: ChangeSetDetail, now: datetime) -> float:
    return max((now - detail.started_at).total_seconds(), 0.0) / 86400 if detail.started_at else 0.0


def tick_inputs(detail: ChangeSetDetail, stats: ExperimentStats, violations: list, now: datetime,
                settings: TickSettings) -> TickInputs:
    """The facts of one ChangeSet for `decide` (pure)."""
    plan = detail.contract["proof_plan"]
    metrics = stats.metrics
    primary_name = plan["primary_metrics"][0]
    primary = metrics.get(primary_name, metrics[GROSS_PROFIT_PER_VISITOR])
    # N* tunes the confidence sequence to be tightest where the plan expects to decide: both arms
    # at the minimum sample
    n_star = 2 * plan["minimum_sample_size"]
    hours = stats.hours_since_last_data
    return TickInputs(
        primary=primary,
        guardrail_metrics=hard_guardrails(metrics[GROSS_PROFIT_PER_VISITOR], metrics[CONVERSION],
                                          metrics[CHECKOUT_ERRORS]),
        planned_split=(detail.rollout_pct, detail.holdout_pct),
        exposures=stats.exposures,
        health=DataHealth(event_delivery_ratio=1.0, job_success_ratio=settings.job_success_ratio,
                          checkout_incident=False, hours_since_last_data=0.0 if hours is None else hours),
        plan=ProofPlan(method="frequentist" if plan["method"] == "frequentist" else "bayesian",
                       n_star=float(n_star), prob_threshold=1 - plan["significance_threshold"]),
        runtime_days=_runtime_days(detail, now),
        minimum_runtime_days=settings.minimum_runtime_days,
        violations=tuple(violations),
        data_watermark=None if stats.watermark is None else stats.watermark.isoformat(),
    )


def tick_store(cursor, bus: CommandBus, views: ViewStore, store_id: UUID, now: datetime,
               settings: TickSettings | None = None) -> dict:
    """One tick for one store; returns what it decided (the on-demand route answers with it)."""
    settings = settings or TickSettings.from_env()
    ctx = StoreContext(store_id=store_id, actor=AUTOPILOT_ACTOR)
    queries = ChangeSetQueries(views)
    expired = []
    for changeset_id in queries.pending_past(store_id, now):
        try:
            bus.execute(cs.ExpireChangeSet(changeset_id=changeset_id, at=now), ctx)
            expired.append(str(changeset_id))
        except DomainError:
            pass  # decided meanwhile: the read model was behind
    live, flags = [], set()
    for summary in sorted(queries.list(ctx, states=list(EXPERIMENT_STATES)), key=lambda s: (s.started_at, str(s.changeset_id))):
        # one experiment per flag (the API refuses a second); should two ever be live, the first started
        # is the one the storefront serves (autopilot/flags/service.py), and the only one measured
        if summary.flag_key and summary.flag_key not in flags:
            flags.add(summary.flag_key)
            live.append(queries.detail(ctx, summary.changeset_id))
    windows = [ExperimentWindow(str(store_id), d.flag_key, d.started_at, now) for d in live]
    stats = experiment_stats(cursor, windows, now=now)
    find = guardrail_facts.finder(bus.app, store_id)
    store = find(Store, store_id)
    policy = getattr(store, "guardrail_policy", None) if store is not None else None
    decisions = []
    for detail in live:
        changeset = find(ChangeSet, detail.changeset_id)
        if changeset is None or changeset.state not in EXPERIMENT_STATES:
            continue  # ended since the read model was read
        skus = [c.sku for c in guardrail_facts.price_changes(changeset.contract)]
        violations = guardrail_facts.violations_for(find, store_id, policy, changeset.contract,
                                                    recent_daily_units(views, store_id, skus, now))
        overridden = _overridden(changeset)
        # a merchant who force-approved overrode those guardrails knowingly; any other breach reverts
        violations = [v for v in violations if (f"guardrail.{v.rule}", v.sku) not in overridden]
        experiment = stats[(str(store_id), detail.flag_key)]
        try:
            decided = _decide_and_record(bus, ctx, detail, experiment, violations, now, settings)
        except Exception as error:  # noqa: BLE001 — one ChangeSet's failure must not stop the store's tick
            log.exception("decider tick failed for changeset %s", detail.changeset_id)
            decided = {"changeset_id": str(detail.changeset_id), "action": "error", "rule": "error",
                       "reason": f"{type(error).__name__}: {error}"[:500], "state": detail.state}
        decisions.append(decided)
    return {"store_id": str(store_id), "at": now.isoformat(), "expired": expired, "decisions": decisions}


def _decide_and_record(bus: CommandBus, ctx: StoreContext, detail: ChangeSetDetail, experiment: ExperimentStats,
                       violations: list, now: datetime, settings: TickSettings) -> dict:
    """Decide one ChangeSet and record the verdict (with the transition it implies) in one save."""
    inputs = tick_inputs(detail, experiment, violations, now, settings)
    decision = decide(inputs)
    # what attribution needs later (AUTOPILOT.md §8): the primary metric's arm means
    numbers = {**decision.numbers, "primary_metric": detail.contract["proof_plan"]["primary_metrics"][0],
               "control_mean": _mean(inputs.primary.control), "treatment_mean": _mean(inputs.primary.treatment)}
    exposed = experiment.exposures.treatment_units + experiment.exposures.control_units
    result = bus.execute(cs.RecordDecision(changeset_id=detail.changeset_id, at=now, action=decision.action,
                                           rule=decision.rule, reason=decision.reason, numbers=numbers,
                                           has_data=exposed > 0), ctx)
    return {"changeset_id": str(detail.changeset_id), "action": decision.action, "rule": decision.rule,
            "reason": decision.reason, "state": result.data["state"]}


def _mean(arm) -> float | None:
    return arm.sum_y / arm.n if arm.n else None


def _overridden(changeset: ChangeSet) -> set[tuple[str, str]]:
    """(code, sku) of the guardrails a forced approval overrode."""
    return {(v.get("code"), v.get("sku")) for e in changeset.audit_trail()
            if e["action"] == "approved" and e["metadata"].get("forced")
            for v in e["metadata"].get("violations", []) if isinstance(v, dict)}


@contextmanager
def _views_for(app):
    """The read models the API reads, for one run of a job (opened and closed with it: a job runs every
    few minutes, and a view store left open holds a connection pool)."""
    views = ViewStore(app.config)
    try:
        yield views
    finally:
        views.close()


def scheduled_tick(warehouse, app, now: datetime) -> list[dict]:
    """Every store with a live or pending ChangeSet, one tick each."""
    bus = CommandBus(app)
    with _views_for(app) as views:
        stores = ChangeSetQueries(views).stores_with(EXPERIMENT_STATES + ("PENDING_APPROVAL",))
        if not stores:
            return []
        with warehouse.reading() as cur:
            return [tick_store(cur, bus, views, store_id, now) for store_id in stores]


JOB = register_job(JOB_NAME, float(os.environ.get("TRAFI_DECIDER_INTERVAL_S", DEFAULT_INTERVAL_S)), scheduled_tick)


# --- the second opinion ---------------------------------------------------------------------------

SECOND_OPINION_JOB = "autopilot.second_opinion"
SECOND_OPINION_INTERVAL_S = 3600.0
_MODEL = None


def _model():
    # compiled once per worker process (seconds), refitted every hour (a fraction of a second)
    global _MODEL
    if _MODEL is None:
        from autopilot.stats.hierarchical import HierarchicalLift

        _MODEL = HierarchicalLift().compile()
    return _MODEL


def pools(details: list[ChangeSetDetail]) -> dict[str, list[ChangeSetDetail]]:
    """Live ChangeSets whose last decision has a lift and its σ, pooled by flag key — the playbook
    they run — across stores: a small store's lift is shrunk toward what the playbook does elsewhere."""
    pooled: dict[str, list[ChangeSetDetail]] = {}
    for detail in details:
        numbers = (detail.latest_decision or {}).get("numbers", {})
        if numbers.get("delta") is not None and (numbers.get("sigma") or 0) > 0:
            pooled.setdefault(detail.flag_key, []).append(detail)
    return pooled


def record_second_opinions(bus: CommandBus, views: ViewStore, now: datetime, model=None) -> list[dict]:
    """Refit the hierarchical model per pool and record each ChangeSet's shrunken lift; it never acts."""
    queries = ChangeSetQueries(views)
    details = []
    for store_id in queries.stores_with(EXPERIMENT_STATES):
        ctx = StoreContext(store_id=store_id, actor=AUTOPILOT_ACTOR)
        details += [(store_id, queries.detail(ctx, s.changeset_id))
                    for s in queries.list(ctx, states=list(EXPERIMENT_STATES)) if s.flag_key]
    store_of = {d.changeset_id: store_id for store_id, d in details}
    recorded = []
    for flag_key, members in pools([d for _, d in details]).items():
        estimates = [LiftEstimate(m.latest_decision["numbers"]["delta"], m.latest_decision["numbers"]["sigma"])
                     for m in members]
        result = (model or _model()).refit(estimates, labels=[str(m.changeset_id) for m in members])
        numbers = result.as_numbers()
        for member, group in zip(members, numbers["groups"]):
            opinion = {"pool": flag_key, "pool_size": len(members), "method": numbers["method"],
                       "fit_seconds": numbers["fit_seconds"], "converged": numbers["converged"],
                       "playbook_lift": numbers["mu"], "between_store_sd": numbers["tau"],
                       "observed_lift": group["estimate"], "standard_error": group["standard_error"],
                       "shrunken_lift": group["mean"], "shrunken_sd": group["sd"],
                       "prob_positive": group["prob_positive"]}
            ctx = StoreContext(store_id=store_of[member.changeset_id], actor=AUTOPILOT_ACTOR)
            try:
                bus.execute(cs.RecordSecondOpinion(changeset_id=member.changeset_id, at=now, opinion=opinion), ctx)
            except DomainError:
                continue  # ended since the read model was read
            recorded.append({"changeset_id": str(member.changeset_id), **opinion})
    return recorded


def scheduled_second_opinions(warehouse, app, now: datetime) -> list[dict]:
    with _views_for(app) as views:
        return record_second_opinions(CommandBus(app), views, now)


SECOND_OPINION = register_job(SECOND_OPINION_JOB, SECOND_OPINION_INTERVAL_S, scheduled_second_opinions)
