"""The flags a storefront sees: live ChangeSets' rules, evaluated in process, exposures recorded.

Rules come from the read model `changesets` (queries/changesets.py `live_flags`): an experiment
(ACTIVE, MEASURING) serves its rollout with its holdout as control; a shipped change (PROVEN,
PERMANENT) serves treatment to everyone but the global holdout; anything else — a rolled-back
ChangeSet above all — is simply absent, so every visitor gets control ("off"). The rules of a
store are re-read at most every `refresh_s` (default 1 s): a rollback reaches the storefront
within a second of being projected, well within one decider tick.

Only experiments record exposures (first evaluation per visitor and flag, de-duplicated in memory
by FlagEvaluator and durably by the telemetry log's event id, autopilot/flags/exposures.py). The API
records them through an ExposureWriter, off the request path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from autopilot.flags.assignment import DEFAULT_GLOBAL_HOLDOUT_PCT, Assignment, Exposure, FlagEvaluator, FlagRule
from autopilot.flags.exposures import ARMS
from queries.changesets import EXPERIMENT_STATES, ChangeSetQueries, LiveFlag

DEFAULT_REFRESH_S = 1.0


@dataclass(frozen=True)
class Evaluation:
    assignments: dict[str, Assignment]
    changesets: dict[str, str]  # flag key → changeset id
    exposures: list[Exposure]  # first exposures of experiments' arms, to record
    evaluator: FlagEvaluator


@dataclass(frozen=True)
class StoreRules:
    evaluator: FlagEvaluator
    experiments: frozenset[str]  # flag keys whose exposures are recorded
    changesets: dict[str, str]  # flag key → changeset id
    loaded_at: float


def rules_of(flags: list[LiveFlag]) -> dict[str, FlagRule]:
    """One rule per flag key; when two ChangeSets share a key, the earliest started one holds it."""
    rules: dict[str, FlagRule] = {}
    for flag in flags:
        if flag.flag_key in rules:
            continue
        if flag.state in EXPERIMENT_STATES:
            rules[flag.flag_key] = FlagRule(flag.flag_key, flag.rollout_pct, flag.holdout_pct)
        else:
            rules[flag.flag_key] = FlagRule(flag.flag_key, 100.0, 0.0)
    return rules


class StorefrontFlags:
    def __init__(self, queries: ChangeSetQueries, record_exposures: Callable[[list[Exposure]], None] | None, *,
                 refresh_s: float = DEFAULT_REFRESH_S, global_holdout_pct: float = DEFAULT_GLOBAL_HOLDOUT_PCT,
                 clock: Callable[[], float] = time.monotonic):
        self.queries = queries
        self.record_exposures = record_exposures
        self.refresh_s = refresh_s
        self.global_holdout_pct = global_holdout_pct
        self.clock = clock
        self._stores: dict[UUID, StoreRules] = {}
        self._lock = threading.Lock()

    def _rules(self, store_id: UUID) -> StoreRules:
        now = self.clock()
        current = self._stores.get(store_id)
        if current is not None and now - current.loaded_at < self.refresh_s:
            return current
        flags = self.queries.live_flags(store_id)
        rules = rules_of(flags)
        experiments = frozenset(f.flag_key for f in flags if f.state in EXPERIMENT_STATES)
        with self._lock:
            current = self._stores.get(store_id)
            if current is None:
                evaluator = FlagEvaluator(rules, global_holdout_pct=self.global_holdout_pct)
            else:
                evaluator = current.evaluator  # keeps its exposure cache across refreshes
                evaluator.replace_rules(rules)
            fresh = StoreRules(evaluator, experiments, {f.flag_key: str(f.changeset_id) for f in flags}, now)
            self._stores[store_id] = fresh
        return fresh

    def fresh(self, store_id: UUID) -> bool:
        """Whether the store's rules are loaded and recent (evaluating then reads nothing)."""
        current = self._stores.get(store_id)
        return current is not None and self.clock() - current.loaded_at < self.refresh_s

    def assign(self, store_id: UUID, visitor_id: str) -> Evaluation:
        """This visitor's assignments, and the experiments' exposures not recorded yet (`record` them)."""
        rules = self._rules(store_id)
        assignments = rules.evaluator.assignments(str(store_id), visitor_id)
        experiment = {k: a for k, a in assignments.items() if k in rules.experiments}
        new = rules.evaluator.first_exposures(str(store_id), visitor_id, experiment) if self.record_exposures else []
        return Evaluation(assignments, rules.changesets, [e for e in new if e.assignment.variant.value in ARMS],
                          rules.evaluator)

    def forget(self, exposures: list[Exposure]) -> None:
        """Exposures whose write failed: evaluated as first exposures again next time."""
        for store_id in {e.store_id for e in exposures}:
            rules = self._stores.get(UUID(store_id))
            if rules is not None:
                rules.evaluator.forget([e for e in exposures if e.store_id == store_id])

    def record(self, evaluation: Evaluation) -> None:
        """Hand the evaluation's first exposures to the recorder (forgotten again if that fails)."""
        if not evaluation.exposures or self.record_exposures is None:
            return
        try:
            self.record_exposures(evaluation.exposures)
        except BaseException:
            evaluation.evaluator.forget(evaluation.exposures)
            raise

    def evaluate(self, store_id: UUID, visitor_id: str) -> tuple[dict[str, Assignment], dict[str, str]]:
        """(assignment per flag key, changeset id per flag key), exposures recorded before returning."""
        evaluation = self.assign(store_id, visitor_id)
        self.record(evaluation)
        return evaluation.assignments, evaluation.changesets

    def variants(self, store_id: UUID, visitor_id: str | None) -> dict[str, str]:
        """flag key → "treatment" | "control" | "off" for this visitor (empty without one); a flag that
        is absent is off."""
        if not visitor_id:
            return {}
        assignments, _ = self.evaluate(store_id, visitor_id)
        return {key: assignment.variant.value for key, assignment in assignments.items()}
