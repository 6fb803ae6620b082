"""ChangeSet: the executable, auditable, reversible artifact of the autopilot (AUTOPILOT.md §3).

The lifecycle is one table of allowed transitions (`TRANSITIONS`, Vendure-style):

    DRAFT → PENDING_APPROVAL → ACTIVE → MEASURING → PROVEN → PERMANENT
                     │                      │
                     ├→ REJECTED            └→ ROLLED_BACK → PERMANENT (explicit merchant confirmation)
                     └→ EXPIRED (pending past `expires_at`, default 7 days after submission)

Anything else raises `InvalidTransition` with the code `changeset.invalid_transition`. The
transition is checked before anything else, so a command in the wrong state always fails with it.

Approving is a decision, not a state: `approve` records it (the ChangeSet stays
PENDING_APPROVAL), and `activate` is the transition to ACTIVE, which needs an approval.
Guardrails are evaluated by the caller against live facts and handed to `approve` as
`violations`; with violations, only a merchant's `force=True` with a written
`guardrail_confirmation` approves, and the confirmation is recorded.

Every event carries actor, previous and new state, reason, metadata (the numbers at that
moment) and the instant: `audit_trail()` is built from them by replaying the stream.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.changeset_contract import Actor, ChangeSetContract, validate_contract
from domain.errors import DomainError, InvalidTransition, InvalidValue

DRAFT = "DRAFT"
PENDING_APPROVAL = "PENDING_APPROVAL"
ACTIVE = "ACTIVE"
MEASURING = "MEASURING"
PROVEN = "PROVEN"
PERMANENT = "PERMANENT"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
ROLLED_BACK = "ROLLED_BACK"

TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({PENDING_APPROVAL}),
    PENDING_APPROVAL: frozenset({ACTIVE, REJECTED, EXPIRED}),
    ACTIVE: frozenset({MEASURING}),
    MEASURING: frozenset({PROVEN, ROLLED_BACK}),
    PROVEN: frozenset({PERMANENT}),
    ROLLED_BACK: frozenset({PERMANENT}),  # only with an explicit merchant confirmation
    REJECTED: frozenset(),
    EXPIRED: frozenset(),
    PERMANENT: frozenset(),
}
STATES = tuple(TRANSITIONS)
FINAL_STATES = frozenset(state for state, targets in TRANSITIONS.items() if not targets)
DEFAULT_APPROVAL_TIMEOUT = timedelta(days=7)


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


class ChangeSetError(DomainError):
    code = "changeset.error"


class GuardrailsBlocked(ChangeSetError):
    """Approval refused: each entry of `errors` names a broken guardrail and, when one exists, the
    adjustment that would pass (problem+json `errors`)."""

    def __init__(self, violations: list[dict]):
        self.errors = [dict(v) for v in violations]
        reasons = "; ".join(v["reason"] for v in self.errors)
        super().__init__(f"blocked by guardrails: {reasons}", code="changeset.guardrails_blocked", field="guardrails")


def _instant(at: datetime, field: str = "at") -> str:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidValue(field, "must be a timezone-aware datetime", code="changeset.invalid_time")
    return at.isoformat()


def _actor(actor: Actor | dict) -> dict:
    if isinstance(actor, dict):
        try:
            actor = Actor.model_validate(actor)
        except Exception:
            raise InvalidValue("actor", "an actor has a kind (system|user|autopilot) and an id",
                               code="changeset.invalid_actor") from None
    if not isinstance(actor, Actor):
        raise InvalidValue("actor", "an actor has a kind (system|user|autopilot) and an id",
                           code="changeset.invalid_actor")
    return actor.model_dump(mode="json")


def _numbers(numbers: dict | None) -> dict:
    numbers = dict(numbers or {})
    for key, value in numbers.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidValue("numbers", "numbers map metric names to numbers", code="changeset.invalid_numbers")
    return numbers


def _json_document(value: dict | None, field: str) -> dict:
    """A decision's numbers: nested JSON (bounds per guardrail, the rule, the watermark), finite floats only."""
    def finite(item) -> bool:
        if isinstance(item, float):
            return math.isfinite(item)
        if isinstance(item, dict):
            return all(isinstance(k, str) and finite(v) for k, v in item.items())
        if isinstance(item, (list, tuple)):
            return all(finite(v) for v in item)
        return item is None or isinstance(item, (str, int, bool))
    value = dict(value or {})
    if not finite(value):
        raise InvalidValue(field, "must be JSON with finite numbers", code="changeset.invalid_numbers")
    return json.loads(json.dumps(value))


def _text(value: str | None, field: str, code: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ChangeSetError(f"{what} is required", code=code, field=field)
    return value.strip()


class ChangeSet(Aggregate):
    TOPIC = "trafi.changeset.v1"

    @event("Created", topic="trafi.changeset.drafted.v1")
    def __init__(self, id: UUID, store_id: UUID, contract: dict, recommendation_id: str | None,
                 evidence: dict | None, actor: dict, reason: str | None, at: str):
        self.store_id = store_id
        self.created_at = at
        self.contract_data = contract
        self.recommendation_id = recommendation_id
        self.evidence = evidence
        self.state = DRAFT
        self.approval: dict = {"status": "pending", "by": None, "at": None, "notes": None, "expires_at": None}
        self.execution: dict = {"status": "not_started", "started_at": None, "ended_at": None,
                                "latest_metrics": {}, "proof_result": None}
        self._audit: list[dict] = []
        self.latest_decision: dict | None = None
        self.second_opinion: dict | None = None
        self._record("drafted", actor, None, DRAFT, reason,
                     {"recommendation_id": recommendation_id, "evidence": evidence}, at)

    @classmethod
    def draft(cls, id: UUID, *, store_id: UUID, contract: ChangeSetContract | dict, at: datetime,
              actor: Actor, recommendation_id: UUID | str | None = None, evidence: dict | None = None,
              reason: str | None = None) -> ChangeSet:
        """A new ChangeSet in DRAFT: from a recommendation (its id and the evidence it was issued
        with), or from a merchant (no recommendation)."""
        validated = validate_contract(contract)
        if recommendation_id is not None and not evidence:
            raise ChangeSetError("a ChangeSet drafted from a recommendation carries its evidence",
                                 code="changeset.evidence_required", field="evidence")
        if recommendation_id is None and evidence is not None:
            raise ChangeSetError("evidence belongs to a recommendation: give its id",
                                 code="changeset.recommendation_required", field="recommendation_id")
        return cls(id=id, store_id=store_id, contract=validated.model_dump(mode="json"),
                   recommendation_id=None if recommendation_id is None else str(recommendation_id),
                   evidence=evidence, actor=_actor(actor), reason=reason, at=_instant(at))

    # --- reading -------------------------------------------------------------------------
    @property
    def contract(self) -> ChangeSetContract:
        return ChangeSetContract.model_validate(self.contract_data)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def audit_trail(self) -> list[dict]:
        """Every event of the stream as an audit entry, oldest first."""
        return [dict(entry, actor=dict(entry["actor"]), metadata=dict(entry["metadata"])) for entry in self._audit]

    def _record(self, action: str, actor: dict, previous: str | None, new: str, reason: str | None,
                metadata: dict, at: str) -> None:
        self._audit.append({"position": len(self._audit) + 1, "action": action, "actor": actor,
                            "previous_state": previous, "new_state": new, "reason": reason,
                            "metadata": metadata, "at": at})

    def _check(self, target: str) -> None:
        if not can_transition(self.state, target):
            raise InvalidTransition("changeset", self.state, target)

    def _check_decision_open(self, at: datetime) -> None:
        if self.approval["status"] != "pending":
            raise ChangeSetError(f"the approval was already decided ({self.approval['status']})",
                                 code="changeset.approval_decided")
        if at >= datetime.fromisoformat(self.approval["expires_at"]):
            raise ChangeSetError("the approval request has expired", code="changeset.approval_expired")

    # --- approval ------------------------------------------------------------------------
    def submit_for_approval(self, at: datetime, expires_in: timedelta = DEFAULT_APPROVAL_TIMEOUT, *,
                            actor: Actor | None = None) -> None:
        self._check(PENDING_APPROVAL)
        when = _instant(at)
        if not isinstance(expires_in, timedelta) or expires_in <= timedelta(0):
            raise InvalidValue("expires_in", "must be a positive duration", code="changeset.invalid_expiry")
        self._submitted(actor=_actor(actor or Actor.system()), previous_state=self.state,
                        new_state=PENDING_APPROVAL, reason=None, metadata={}, at=when,
                        expires_at=(at + expires_in).isoformat())

    @event("SubmittedForApproval", topic="trafi.changeset.submitted_for_approval.v1")
    def _submitted(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                   at: str, expires_at: str) -> None:
        self.state = new_state
        self.approval = {**self.approval, "status": "pending", "expires_at": expires_at}
        self._record("submitted_for_approval", actor, previous_state, new_state, reason,
                     {**metadata, "expires_at": expires_at}, at)

    def approve(self, by: Actor, at: datetime, notes: str | None = None, force: bool = False,
                guardrail_confirmation: str | None = None, *, violations: list[str] | tuple = ()) -> None:
        """Record the approval (the ChangeSet stays PENDING_APPROVAL until `activate`).

        `violations`: the guardrails that block it now, as the caller evaluated them. With any,
        only a merchant forcing it with a written confirmation approves; the confirmation is kept.
        """
        if self.state != PENDING_APPROVAL:
            raise ChangeSetError(f"only a ChangeSet pending approval can be approved (it is {self.state})",
                                 code="changeset.not_pending_approval")
        when = _instant(at)
        self._check_decision_open(at)
        who = _actor(by)
        # A violation is its reason (str) or a problem entry (dict: field, code, reason, adjustment …)
        entries = [dict(v) if isinstance(v, dict) else {"reason": str(v)} for v in violations]
        violations = [v if isinstance(v, dict) else str(v) for v in violations]
        confirmation = None
        if force:
            if who["kind"] != "user":
                raise ChangeSetError("only a merchant can force an approval", code="changeset.merchant_required",
                                     field="by")
            confirmation = _text(guardrail_confirmation, "guardrail_confirmation", "changeset.confirmation_required",
                                 "a written confirmation of the blocked guardrails")
        elif entries:
            raise GuardrailsBlocked(entries)
        self._approved(actor=who, previous_state=self.state, new_state=self.state, reason=notes,
                       metadata={"forced": bool(force), "violations": _json_document({"v": violations}, "violations")["v"],
                                 "guardrail_confirmation": confirmation}, at=when)

    @event("Approved", topic="trafi.changeset.approved.v1")
    def _approved(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                  at: str) -> None:
        self.approval = {**self.approval, "status": "approved", "by": actor, "at": at, "notes": reason}
        self._record("approved", actor, previous_state, new_state, reason, metadata, at)

    def reject(self, by: Actor, at: datetime, reason: str) -> None:
        self._check(REJECTED)
        when = _instant(at)
        self._check_decision_open(at)
        why = _text(reason, "reason", "changeset.reason_required", "a reason")
        self._rejected(actor=_actor(by), previous_state=self.state, new_state=REJECTED, reason=why,
                       metadata={}, at=when)

    @event("Rejected", topic="trafi.changeset.rejected.v1")
    def _rejected(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                  at: str) -> None:
        self.state = new_state
        self.approval = {**self.approval, "status": "rejected", "by": actor, "at": at, "notes": reason}
        self._record("rejected", actor, previous_state, new_state, reason, metadata, at)

    def expire(self, at: datetime) -> None:
        """A request left pending past its `expires_at` expires (decided by the system)."""
        self._check(EXPIRED)
        when = _instant(at)
        if self.approval["status"] != "pending":
            raise ChangeSetError(f"the approval was already decided ({self.approval['status']})",
                                 code="changeset.approval_decided")
        expires_at = self.approval["expires_at"]
        if at < datetime.fromisoformat(expires_at):
            raise ChangeSetError(f"the approval request is pending until {expires_at}",
                                 code="changeset.not_expired")
        self._expired(actor=_actor(Actor.system()), previous_state=self.state, new_state=EXPIRED,
                      reason="approval timeout", metadata={"expires_at": expires_at}, at=when)

    @event("Expired", topic="trafi.changeset.expired.v1")
    def _expired(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                 at: str) -> None:
        self.state = new_state
        self.approval = {**self.approval, "status": "expired"}
        self._record("expired", actor, previous_state, new_state, reason, metadata, at)

    # --- execution -----------------------------------------------------------------------
    def activate(self, at: datetime, *, actor: Actor | None = None) -> None:
        self._check(ACTIVE)
        when = _instant(at)
        if self.approval["status"] != "approved":
            raise ChangeSetError("a ChangeSet is activated only once approved", code="changeset.not_approved")
        self._activated(actor=_actor(actor or Actor.system()), previous_state=self.state, new_state=ACTIVE,
                        reason=None, metadata={}, at=when)

    @event("Activated", topic="trafi.changeset.activated.v1")
    def _activated(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                   at: str) -> None:
        self.state = new_state
        self.execution = {**self.execution, "status": "active", "started_at": at}
        self._record("activated", actor, previous_state, new_state, reason, metadata, at)

    def start_measuring(self, at: datetime, *, actor: Actor | None = None, numbers: dict | None = None) -> None:
        self._check(MEASURING)
        self._measuring_started(actor=_actor(actor or Actor.system()), previous_state=self.state,
                                new_state=MEASURING, reason=None, metadata=_numbers(numbers), at=_instant(at))

    @event("MeasuringStarted", topic="trafi.changeset.measuring_started.v1")
    def _measuring_started(self, actor: dict, previous_state: str, new_state: str, reason: str | None,
                           metadata: dict, at: str) -> None:
        self.state = new_state
        self.execution = {**self.execution, "status": "measuring",
                          "latest_metrics": {**self.execution["latest_metrics"], **metadata}}
        self._record("measuring_started", actor, previous_state, new_state, reason, metadata, at)

    def prove(self, at: datetime, numbers: dict, *, actor: Actor | None = None, reason: str | None = None) -> None:
        """The proof plan's test says the change works: `numbers` is the proof result."""
        self._check(PROVEN)
        when = _instant(at)
        result = _numbers(numbers)
        if not result:
            raise InvalidValue("numbers", "a proof carries its numbers", code="changeset.invalid_numbers")
        self._proven(actor=_actor(actor or Actor.system()), previous_state=self.state, new_state=PROVEN,
                     reason=reason, metadata=result, at=when)

    @event("Proven", topic="trafi.changeset.proven.v1")
    def _proven(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                at: str) -> None:
        self.state = new_state
        self.execution = {**self.execution, "status": "proven", "ended_at": at, "proof_result": dict(metadata),
                          "latest_metrics": {**self.execution["latest_metrics"], **metadata}}
        self._record("proven", actor, previous_state, new_state, reason, metadata, at)

    def roll_back(self, at: datetime, actor: Actor, reason: str, numbers: dict | None = None) -> None:
        """Back to control: one command for the merchant, automatic for the deciders."""
        self._check(ROLLED_BACK)
        when = _instant(at)
        who = _actor(actor)
        why = _text(reason, "reason", "changeset.reason_required", "a reason")
        self._rolled_back(actor=who, previous_state=self.state, new_state=ROLLED_BACK, reason=why,
                          metadata=_numbers(numbers), at=when)

    @event("RolledBack", topic="trafi.changeset.rolled_back.v1")
    def _rolled_back(self, actor: dict, previous_state: str, new_state: str, reason: str | None, metadata: dict,
                     at: str) -> None:
        self.state = new_state
        self.execution = {**self.execution, "status": "rolled_back", "ended_at": at,
                          "latest_metrics": {**self.execution["latest_metrics"], **metadata}}
        self._record("rolled_back", actor, previous_state, new_state, reason, metadata, at)

    def make_permanent(self, at: datetime, by: Actor, confirmation: str | None = None) -> None:
        """Keep the change for good. From ROLLED_BACK only a merchant can, with a written confirmation."""
        self._check(PERMANENT)
        when = _instant(at)
        who = _actor(by)
        if self.state == ROLLED_BACK:
            if who["kind"] != "user":
                raise ChangeSetError("only a merchant can make a rolled-back ChangeSet permanent",
                                     code="changeset.merchant_required", field="by")
            confirmation = _text(confirmation, "confirmation", "changeset.confirmation_required",
                                 "an explicit confirmation")
        elif confirmation is not None:
            confirmation = str(confirmation)
        self._made_permanent(actor=who, previous_state=self.state, new_state=PERMANENT, reason=None,
                             metadata={"confirmation": confirmation}, at=when)

    @event("MadePermanent", topic="trafi.changeset.made_permanent.v1")
    def _made_permanent(self, actor: dict, previous_state: str, new_state: str, reason: str | None,
                        metadata: dict, at: str) -> None:
        self.state = new_state
        self.execution = {**self.execution, "status": "permanent"}
        self._record("made_permanent", actor, previous_state, new_state, reason, metadata, at)

    # --- what the deciders say -------------------------------------------------------------
    def record_decision(self, at: datetime, *, action: str, rule: str, reason: str, numbers: dict,
                        actor: Actor | None = None) -> None:
        """One decider tick's verdict with every number behind it (AUTOPILOT.md §7). Not a transition:
        a verdict that changes the state (rollback, prove) is followed by that transition's event."""
        if self.state not in (ACTIVE, MEASURING):
            raise ChangeSetError(f"only a live experiment is decided on (it is {self.state})",
                                 code="changeset.not_live")
        when = _instant(at)
        what = _text(action, "action", "changeset.invalid_decision", "the decision's action")
        self._decision_recorded(actor=_actor(actor or Actor.autopilot()), previous_state=self.state,
                                new_state=self.state, reason=_text(reason, "reason", "changeset.reason_required",
                                                                   "a reason"),
                                metadata={"action": what, "rule": _text(rule, "rule", "changeset.invalid_decision",
                                                                        "the rule"),
                                          "numbers": _json_document(numbers, "numbers")},
                                at=when)

    @event("DecisionRecorded", topic="trafi.changeset.decision_recorded.v1")
    def _decision_recorded(self, actor: dict, previous_state: str, new_state: str, reason: str | None,
                           metadata: dict, at: str) -> None:
        self.latest_decision = {"action": metadata["action"], "rule": metadata["rule"], "reason": reason,
                                "numbers": metadata["numbers"], "at": at}
        self._record("decision_recorded", actor, previous_state, new_state, reason, metadata, at)

    def record_second_opinion(self, at: datetime, opinion: dict, *, actor: Actor | None = None) -> None:
        """The hierarchical model's shrunken estimate (autopilot/stats/hierarchical.py): recorded beside
        the deciders' verdicts, never acted on by itself."""
        if self.state not in (ACTIVE, MEASURING, PROVEN):
            raise ChangeSetError(f"a second opinion is for a live or proven experiment (it is {self.state})",
                                 code="changeset.not_live")
        self._second_opinion_recorded(actor=_actor(actor or Actor.autopilot()), previous_state=self.state,
                                      new_state=self.state, reason="hierarchical model refit",
                                      metadata=_json_document(opinion, "opinion"), at=_instant(at))

    @event("SecondOpinionRecorded", topic="trafi.changeset.second_opinion_recorded.v1")
    def _second_opinion_recorded(self, actor: dict, previous_state: str, new_state: str, reason: str | None,
                                 metadata: dict, at: str) -> None:
        self.second_opinion = dict(metadata, at=at)
        self._record("second_opinion_recorded", actor, previous_state, new_state, reason, metadata, at)
