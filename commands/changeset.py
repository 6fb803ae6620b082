"""ChangeSets: draft, submit, approve (and activate), reject, expire, roll back, make permanent,
record the deciders' verdicts — and the store's guardrail policy they are all checked against.

Guardrails are checked here, on the write side, against the Product and StockItem aggregates
(commands/guardrail_facts.py): whoever calls — the admin API, the decider worker, a script —
cannot approve past them. A merchant may force an approval with a written confirmation.

Approving also activates: the merchant's "go" starts the experiment in the same save, so the
check at approval and the check at activation are one check at one instant. The flag follows
the state (queries/flags.py): ACTIVE/MEASURING ramps it with its holdout, ROLLED_BACK turns it
back to control for everyone the moment the event is projected.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID, uuid5

from pydantic import Field, field_validator

from commands import guardrail_facts
from commands.base import Command, aware as _aware
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain.changeset import ACTIVE, MEASURING, ChangeSet
from domain.changeset_contract import Actor
from domain.errors import Conflict, InvalidValue
from domain.store import Store
from autopilot.guardrails import GuardrailPolicy

Text = Field(min_length=1, max_length=2000)


def changeset_id_for_recommendation(store_id: UUID, recommendation_id: UUID | str) -> UUID:
    """One draft per recommendation: drafting it twice is a conflict, not a second ChangeSet."""
    return uuid5(store_id, f"changeset:recommendation:{recommendation_id}")


def actor_of(ctx: StoreContext) -> Actor:
    """Who acts, as the ChangeSet's audit trail names them."""
    if ctx.actor == "autopilot":
        return Actor.autopilot()
    if ctx.actor.startswith("user:"):
        return Actor.user(ctx.actor.removeprefix("user:"))
    if ctx.actor.startswith("apikey:"):
        # a secret key is the merchant's own credential (scoped by them): it acts as the merchant
        return Actor.user(ctx.actor)
    return Actor.system(ctx.actor)


class _OnChangeSet(Command):
    changeset_id: UUID
    at: datetime

    _at_aware = field_validator("at")(_aware)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.changeset_id, ctx.store_id]


def _changeset(cmd: _OnChangeSet, uow: UnitOfWork) -> ChangeSet:
    return uow.get(ChangeSet, cmd.changeset_id, "changeset")


def summary(changeset: ChangeSet) -> dict:
    return {"changeset_id": str(changeset.id), "state": changeset.state, "approval": changeset.approval["status"],
            "version": changeset.version}


# --- drafting -------------------------------------------------------------------------------------


class DraftChangeSet(Command):
    """A merchant's own ChangeSet (the id is chosen by the caller, so a retried request is one draft)."""

    changeset_id: UUID
    contract: dict
    reason: str | None = Field(default=None, max_length=2000)
    at: datetime

    _at_aware = field_validator("at")(_aware)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.changeset_id]


def draft_changeset(cmd: DraftChangeSet, uow: UnitOfWork) -> dict:
    if uow.exists(cmd.changeset_id):
        raise Conflict(f"changeset {cmd.changeset_id} already exists", code="changeset.already_exists")
    changeset = ChangeSet.draft(cmd.changeset_id, store_id=uow.ctx.store_id, contract=cmd.contract, at=cmd.at,
                                actor=actor_of(uow.ctx), reason=cmd.reason)
    uow.add(changeset)
    return summary(changeset)


class DraftChangeSetFromRecommendation(Command):
    recommendation_id: UUID
    contract: dict
    evidence: dict
    at: datetime

    _at_aware = field_validator("at")(_aware)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [changeset_id_for_recommendation(ctx.store_id, self.recommendation_id)]


def draft_changeset_from_recommendation(cmd: DraftChangeSetFromRecommendation, uow: UnitOfWork) -> dict:
    changeset_id = changeset_id_for_recommendation(uow.ctx.store_id, cmd.recommendation_id)
    if uow.exists(changeset_id):
        raise Conflict(f"recommendation {cmd.recommendation_id} is already drafted as {changeset_id}",
                       code="changeset.already_drafted")
    changeset = ChangeSet.draft(changeset_id, store_id=uow.ctx.store_id, contract=cmd.contract, at=cmd.at,
                                actor=actor_of(uow.ctx), recommendation_id=cmd.recommendation_id,
                                evidence=cmd.evidence, reason="drafted from the diagnosis' recommendation")
    uow.add(changeset)
    return summary(changeset)


class SubmitChangeSet(_OnChangeSet):
    expires_in_days: float = Field(default=7, gt=0, le=90)


def submit_changeset(cmd: SubmitChangeSet, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    changeset.submit_for_approval(cmd.at, timedelta(days=cmd.expires_in_days), actor=actor_of(uow.ctx))
    return summary(changeset)


# --- deciding on approval -------------------------------------------------------------------------


class ApproveChangeSet(_OnChangeSet):
    notes: str | None = Field(default=None, max_length=2000)
    force: bool = False
    guardrail_confirmation: str | None = Field(default=None, max_length=2000)
    # units sold per day per SKU (recent average), for days-of-cover: not on the write side
    daily_units_sold: dict[str, float] = Field(default_factory=dict, max_length=10_000)


def _store_guardrails(uow: UnitOfWork) -> dict | None:
    store = uow.find(Store, uow.ctx.store_id)
    return getattr(store, "guardrail_policy", None) if store is not None else None


def current_violations(changeset: ChangeSet, uow: UnitOfWork, daily_units_sold: dict[str, float]) -> list:
    return guardrail_facts.violations_for(uow.find, uow.ctx.store_id, _store_guardrails(uow), changeset.contract,
                                          daily_units_sold)


def approve_changeset(cmd: ApproveChangeSet, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    violations = [guardrail_facts.as_problem(v) for v in current_violations(changeset, uow, cmd.daily_units_sold)]
    actor = actor_of(uow.ctx)
    changeset.approve(actor, cmd.at, cmd.notes, cmd.force, cmd.guardrail_confirmation, violations=violations)
    changeset.activate(cmd.at, actor=actor)
    return {**summary(changeset), "forced": cmd.force, "violations": violations}


class RejectChangeSet(_OnChangeSet):
    reason: str = Text


def reject_changeset(cmd: RejectChangeSet, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    changeset.reject(actor_of(uow.ctx), cmd.at, cmd.reason)
    return summary(changeset)


class ExpireChangeSet(_OnChangeSet):
    pass


def expire_changeset(cmd: ExpireChangeSet, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    changeset.expire(cmd.at)
    return summary(changeset)


# --- ending an experiment -------------------------------------------------------------------------


class RollBackChangeSet(_OnChangeSet):
    reason: str = Text


def _measure_if_active(changeset: ChangeSet, at: datetime, actor: Actor) -> None:
    # The lifecycle goes through MEASURING; an ACTIVE change rolled back before its first
    # measurement passes through it in the same save, so the audit trail shows both steps.
    if changeset.state == ACTIVE:
        changeset.start_measuring(at, actor=actor)


def roll_back_changeset(cmd: RollBackChangeSet, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    actor = actor_of(uow.ctx)
    if changeset.state in (ACTIVE, MEASURING):
        _measure_if_active(changeset, cmd.at, actor)
    changeset.roll_back(cmd.at, actor, cmd.reason)
    return summary(changeset)


class MakeChangeSetPermanent(_OnChangeSet):
    confirmation: str | None = Field(default=None, max_length=2000)


def make_changeset_permanent(cmd: MakeChangeSetPermanent, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    changeset.make_permanent(cmd.at, actor_of(uow.ctx), cmd.confirmation)
    return summary(changeset)


# --- the deciders ---------------------------------------------------------------------------------

Verdict = Literal["revert", "block", "hold", "rollback", "prove", "continue", "stop_futile"]
ENDS_IN_ROLLBACK = {"revert": "a guardrail invariant broke", "rollback": "the change hurts",
                    "stop_futile": "the change cannot reach a lift worth keeping"}


def flat_numbers(numbers: dict) -> dict[str, float]:
    """The top-level numbers of a decision (Δ, σ, bounds, N …) for the proof result and the rollback."""
    return {k: float(v) for k, v in numbers.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class RecordDecision(_OnChangeSet):
    action: Verdict
    rule: str = Field(min_length=1, max_length=200)
    reason: str = Text
    numbers: dict = Field(default_factory=dict)
    has_data: bool = False  # exposures reached the warehouse: an ACTIVE change starts measuring


def record_decision(cmd: RecordDecision, uow: UnitOfWork) -> dict:
    """One tick's verdict, and the transition it implies, in one save: the decision event first (with
    every number), then MEASURING / ROLLED_BACK / PROVEN. A rollback is the autopilot's."""
    changeset = _changeset(cmd, uow)
    autopilot = Actor.autopilot()
    changeset.record_decision(cmd.at, action=cmd.action, rule=cmd.rule, reason=cmd.reason, numbers=cmd.numbers,
                              actor=autopilot)
    numbers = flat_numbers(cmd.numbers)
    if cmd.action in ENDS_IN_ROLLBACK:
        _measure_if_active(changeset, cmd.at, autopilot)
        changeset.roll_back(cmd.at, autopilot, f"{ENDS_IN_ROLLBACK[cmd.action]} ({cmd.rule}): {cmd.reason}", numbers)
    elif cmd.action == "prove":
        _measure_if_active(changeset, cmd.at, autopilot)
        changeset.prove(cmd.at, numbers, actor=autopilot, reason=cmd.reason)
    elif changeset.state == ACTIVE and cmd.has_data:
        changeset.start_measuring(cmd.at, actor=autopilot, numbers=numbers)
    return {**summary(changeset), "action": cmd.action, "rule": cmd.rule}


class RecordSecondOpinion(_OnChangeSet):
    opinion: dict


def record_second_opinion(cmd: RecordSecondOpinion, uow: UnitOfWork) -> dict:
    changeset = _changeset(cmd, uow)
    changeset.record_second_opinion(cmd.at, cmd.opinion)
    return summary(changeset)


# --- the store's guardrails -----------------------------------------------------------------------


class SetGuardrailPolicy(Command):
    margin_floor_pct: float = Field(ge=0, lt=100)
    margin_floor_by_category: dict[str, float] = Field(default_factory=dict, max_length=1000)
    margin_floor_by_sku: dict[str, float] = Field(default_factory=dict, max_length=10_000)
    max_discount_pct: float | None = Field(default=None, ge=0, le=100)
    min_stock_units: int | None = Field(default=None, ge=0)
    min_days_of_cover: float | None = Field(default=None, ge=0)
    excluded_categories: list[str] = Field(default_factory=list, max_length=1000)
    payment_fee_bp: int = Field(default=guardrail_facts.DEFAULT_FEE_BP, ge=0, lt=10_000)
    payment_fee_fixed_minor: int = Field(default=guardrail_facts.DEFAULT_FEE_FIXED_MINOR, ge=0)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id]


def set_guardrail_policy(cmd: SetGuardrailPolicy, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    policy = cmd.model_dump(mode="json")
    policy["excluded_categories"] = sorted(set(policy["excluded_categories"]))
    try:  # the rules across fields (a floor per category in range, names not blank) are the policy's
        GuardrailPolicy(**{k: v for k, v in policy.items() if not k.startswith("payment_fee")})
    except ValueError as exc:
        field = str(exc).split(" ", 1)[0]
        raise InvalidValue(field, str(exc), code="guardrails.invalid_policy") from None
    store.set_guardrail_policy(policy)
    return {"store_id": str(store.id), "guardrails": policy}
