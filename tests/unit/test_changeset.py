"""ChangeSet: the lifecycle table, the rules on each command, the audit trail and the contract."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from eventsourcing.application import Application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.changeset import (
    ACTIVE, DRAFT, EXPIRED, MEASURING, PENDING_APPROVAL, PERMANENT, PROVEN, REJECTED, ROLLED_BACK, STATES,
    TRANSITIONS, ChangeSet,
)
from domain.changeset_contract import Actor, ChangeSetContract, validate_contract
from domain.errors import DomainError, InvalidTransition

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
MERCHANT = Actor.user("merchant-1")
AUTOPILOT = Actor.autopilot()

CONTRACT = {
    "hypothesis": {
        "problem": "mobile checkout drop-off", "expected_outcome": "+0.4 pp conversion", "confidence": "medium",
        "data_evidence": [{"metric": "checkout_conversion", "value": 0.31, "period": "28d", "segment": "mobile"}],
    },
    "action_plan": {
        "type": "feature_flag", "target_segment": "mobile",
        "implementation": {"flag_key": "express_checkout", "changes": [{"show": "express"}]},
        "rollout_strategy": "holdout", "rollout_percentage": 50,
    },
    "guardrails": {
        "profit_floor_min_margin_pct": 20, "stock_threshold": 5, "slo_requirements": {"checkout_p95_ms": 800},
        "risk_level": "low", "blocked_conditions": ["black_friday"],
    },
    "rollback_plan": {
        "auto_rollback_triggers": [{"metric": "checkout_errors", "threshold": 0.02, "direction": "above"}],
        "manual_rollback_enabled": True, "procedure": "turn the flag back to control",
        "estimated_rollback_time_minutes": 5,
    },
    "proof_plan": {
        "primary_metrics": ["gross_profit_per_visitor"], "secondary_metrics": ["conversion", "checkout_errors"],
        "holdout_pct": 10, "method": "bayesian", "minimum_sample_size": 1000, "measurement_window_days": 14,
        "significance_threshold": 0.05,
    },
}

# The command that leads to each state (DRAFT is only ever reached by drafting).
TARGETS = (PENDING_APPROVAL, ACTIVE, MEASURING, PROVEN, PERMANENT, REJECTED, EXPIRED, ROLLED_BACK)


def new(**kwargs) -> ChangeSet:
    kwargs.setdefault("recommendation_id", uuid4())
    kwargs.setdefault("evidence", {"finding": "mobile checkout", "relative_drop": 0.18})
    kwargs.setdefault("actor", AUTOPILOT)
    return ChangeSet.draft(uuid4(), store_id=uuid4(), contract=CONTRACT, at=T0, **kwargs)


def command(cs: ChangeSet, target: str, at: datetime) -> None:
    """The ordinary command for `target`, with everything else it needs in order."""
    if target == PENDING_APPROVAL:
        cs.submit_for_approval(at)
    elif target == ACTIVE:
        cs.activate(at)
    elif target == MEASURING:
        cs.start_measuring(at)
    elif target == PROVEN:
        cs.prove(at, {"uplift": 0.012, "probability": 0.97})
    elif target == PERMANENT:
        cs.make_permanent(at, MERCHANT, confirmation="keep it")
    elif target == REJECTED:
        cs.reject(MERCHANT, at, "not now")
    elif target == EXPIRED:
        cs.expire(at)
    elif target == ROLLED_BACK:
        cs.roll_back(at, AUTOPILOT, "guardrail K1", {"gross_profit_per_visitor": -0.3})
    else:  # pragma: no cover
        raise AssertionError(target)


PATHS = {
    DRAFT: [],
    PENDING_APPROVAL: [PENDING_APPROVAL],
    ACTIVE: [PENDING_APPROVAL, "approve", ACTIVE],
    MEASURING: [PENDING_APPROVAL, "approve", ACTIVE, MEASURING],
    PROVEN: [PENDING_APPROVAL, "approve", ACTIVE, MEASURING, PROVEN],
    PERMANENT: [PENDING_APPROVAL, "approve", ACTIVE, MEASURING, PROVEN, PERMANENT],
    REJECTED: [PENDING_APPROVAL, REJECTED],
    EXPIRED: [PENDING_APPROVAL, EXPIRED],
    ROLLED_BACK: [PENDING_APPROVAL, "approve", ACTIVE, MEASURING, ROLLED_BACK],
}


def in_state(state: str) -> ChangeSet:
    cs = new()
    at = T0
    for step in PATHS[state]:
        at = at + timedelta(days=8) if step == EXPIRED else at + timedelta(hours=1)
        if step == "approve":
            cs.approve(MERCHANT, at, "go")
        else:
            command(cs, step, at)
    assert cs.state == state
    return cs


def replay(events):
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


# --- the table -------------------------------------------------------------------------------
def test_the_table_is_the_lifecycle_of_the_spec():
    assert set(STATES) == {DRAFT, PENDING_APPROVAL, ACTIVE, MEASURING, PROVEN, PERMANENT, REJECTED, EXPIRED,
                           ROLLED_BACK}
    allowed = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert allowed == {
        (DRAFT, PENDING_APPROVAL), (PENDING_APPROVAL, ACTIVE), (ACTIVE, MEASURING), (MEASURING, PROVEN),
        (PROVEN, PERMANENT), (PENDING_APPROVAL, REJECTED), (PENDING_APPROVAL, EXPIRED),
        (MEASURING, ROLLED_BACK), (ROLLED_BACK, PERMANENT),
    }


ALLOWED = [(a, b) for a in STATES for b in sorted(TRANSITIONS[a])]
DISALLOWED = [(a, b) for a in STATES for b in TARGETS if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition_works(current, target):
    cs = in_state(current)
    if target == ACTIVE:
        cs.approve(MERCHANT, T0 + timedelta(days=1), "go")
    at = T0 + timedelta(days=30 if target == EXPIRED else 2)
    command(cs, target, at)
    assert cs.state == target
    last = cs.audit_trail()[-1]
    assert (last["previous_state"], last["new_state"], last["at"]) == (current, target, at.isoformat())


@pytest.mark.parametrize(("current", "target"), DISALLOWED)
def test_every_other_transition_is_refused_with_the_code(current, target):
    cs = in_state(current)
    version = cs.version
    with pytest.raises(InvalidTransition) as refused:
        command(cs, target, T0 + timedelta(days=30))
    assert refused.value.code == "changeset.invalid_transition"
    assert current in refused.value.reason and target in refused.value.reason
    assert (refused.value.current, refused.value.target) == (current, target)
    assert cs.state == current and cs.version == version


def test_drafting_back_is_not_a_command():
    assert all(DRAFT not in targets for targets in TRANSITIONS.values())


# --- drafting --------------------------------------------------------------------------------
def test_draft_from_a_recommendation_keeps_its_id_and_evidence():
    rec = uuid4()
    cs = new(recommendation_id=rec, evidence={"finding": "x"})
    assert cs.state == DRAFT and cs.recommendation_id == str(rec) and cs.evidence == {"finding": "x"}
    assert isinstance(cs.contract, ChangeSetContract)
    assert cs.approval["status"] == "pending" and cs.execution["status"] == "not_started"


def test_draft_from_a_merchant_has_no_recommendation():
    cs = new(recommendation_id=None, evidence=None, actor=MERCHANT)
    assert cs.recommendation_id is None
    assert cs.audit_trail()[0]["actor"] == {"kind": "user", "id": "merchant-1"}


def test_draft_from_a_recommendation_needs_its_evidence():
    with pytest.raises(DomainError) as e:
        new(evidence=None)
    assert e.value.code == "changeset.evidence_required"
    with pytest.raises(DomainError) as e:
        new(recommendation_id=None, evidence={"finding": "x"})
    assert e.value.code == "changeset.recommendation_required"


def test_times_must_be_timezone_aware():
    with pytest.raises(DomainError) as e:
        ChangeSet.draft(uuid4(), store_id=uuid4(), contract=CONTRACT, at=datetime(2026, 1, 1), actor=MERCHANT)
    assert e.value.code == "changeset.invalid_time"


# --- approval and expiry ---------------------------------------------------------------------
def test_submission_sets_the_expiry_default_seven_days():
    cs = new()
    cs.submit_for_approval(T0)
    assert cs.approval == {"status": "pending", "by": None, "at": None, "notes": None,
                           "expires_at": (T0 + timedelta(days=7)).isoformat()}
    other = new()
    other.submit_for_approval(T0, expires_in=timedelta(days=2))
    assert other.approval["expires_at"] == (T0 + timedelta(days=2)).isoformat()
    with pytest.raises(DomainError) as e:
        new().submit_for_approval(T0, expires_in=timedelta(0))
    assert e.value.code == "changeset.invalid_expiry"


def test_expire_only_once_past_expires_at():
    cs = in_state(PENDING_APPROVAL)
    with pytest.raises(DomainError) as e:
        cs.expire(T0 + timedelta(days=6))
    assert e.value.code == "changeset.not_expired" and cs.state == PENDING_APPROVAL
    expires_at = datetime.fromisoformat(cs.approval["expires_at"])
    cs.expire(expires_at)
    assert cs.state == EXPIRED and cs.approval["status"] == "expired"
    entry = cs.audit_trail()[-1]
    assert entry["actor"]["kind"] == "system" and entry["metadata"] == {"expires_at": expires_at.isoformat()}


def test_no_decision_after_expiry_and_no_expiry_after_a_decision():
    late = T0 + timedelta(days=10)
    cs = in_state(PENDING_APPROVAL)
    for decide in (lambda: cs.approve(MERCHANT, late, "go"), lambda: cs.reject(MERCHANT, late, "no")):
        with pytest.raises(DomainError) as e:
            decide()
        assert e.value.code == "changeset.approval_expired"
    cs.approve(MERCHANT, T0 + timedelta(days=1), "go")
    with pytest.raises(DomainError) as e:
        cs.expire(late)
    assert e.value.code == "changeset.approval_decided"
    with pytest.raises(DomainError) as e:
        cs.approve(MERCHANT, T0 + timedelta(days=2), "again")
    assert e.value.code == "changeset.approval_decided"


def test_approve_records_the_decision_and_activate_needs_it():
    cs = in_state(PENDING_APPROVAL)
    with pytest.raises(DomainError) as e:
        cs.activate(T0 + timedelta(hours=2))
    assert e.value.code == "changeset.not_approved"
    at = T0 + timedelta(hours=3)
    cs.approve(MERCHANT, at, "looks right")
    assert cs.state == PENDING_APPROVAL
    assert cs.approval["status"] == "approved" and cs.approval["by"] == {"kind": "user", "id": "merchant-1"}
    assert cs.approval["at"] == at.isoformat() and cs.approval["notes"] == "looks right"
    cs.activate(at)
    assert cs.state == ACTIVE and cs.execution["started_at"] == at.isoformat()


def test_approve_only_when_pending():
    with pytest.raises(DomainError) as e:
        in_state(DRAFT).approve(MERCHANT, T0, "go")
    assert e.value.code == "changeset.not_pending_approval"


def test_guardrails_block_unless_the_merchant_forces_with_a_confirmation():
    cs = in_state(PENDING_APPROVAL)
    at = T0 + timedelta(hours=2)
    with pytest.raises(DomainError) as e:
        cs.approve(MERCHANT, at, "go", violations=["stock_threshold"])
    assert e.value.code == "changeset.guardrails_blocked"
    with pytest.raises(DomainError) as e:
        cs.approve(MERCHANT, at, "go", force=True, violations=["stock_threshold"])
    assert e.value.code == "changeset.confirmation_required"
    with pytest.raises(DomainError) as e:
        cs.approve(AUTOPILOT, at, "go", force=True, guardrail_confirmation="ok", violations=["stock_threshold"])
    assert e.value.code == "changeset.merchant_required"
    assert cs.approval["status"] == "pending"
    cs.approve(MERCHANT, at, "go", force=True, guardrail_confirmation="I accept low stock",
               violations=["stock_threshold"])
    assert cs.audit_trail()[-1]["metadata"] == {
        "forced": True, "violations": ["stock_threshold"], "guardrail_confirmation": "I accept low stock",
    }


def test_reject_needs_a_reason():
    cs = in_state(PENDING_APPROVAL)
    with pytest.raises(DomainError) as e:
        cs.reject(MERCHANT, T0 + timedelta(hours=2), "  ")
    assert e.value.code == "changeset.reason_required"
    cs.reject(MERCHANT, T0 + timedelta(hours=2), "too risky")
    assert cs.state == REJECTED and cs.approval["status"] == "rejected" and cs.approval["notes"] == "too risky"


# --- execution and confirmation ---------------------------------------------------------------
def test_prove_records_the_numbers():
    cs = in_state(MEASURING)
    with pytest.raises(DomainError) as e:
        cs.prove(T0 + timedelta(days=20), {})
    assert e.value.code == "changeset.invalid_numbers"
    with pytest.raises(DomainError):
        cs.prove(T0 + timedelta(days=20), {"uplift": "big"})
    cs.prove(T0 + timedelta(days=20), {"uplift": 0.01})
    assert cs.execution["proof_result"] == {"uplift": 0.01} and cs.execution["status"] == "proven"
    assert cs.execution["ended_at"] == (T0 + timedelta(days=20)).isoformat()


def test_roll_back_needs_a_reason_and_keeps_actor_and_numbers():
    cs = in_state(MEASURING)
    with pytest.raises(DomainError) as e:
        cs.roll_back(T0 + timedelta(days=2), MERCHANT, "")
    assert e.value.code == "changeset.reason_required"
    cs.roll_back(T0 + timedelta(days=2), MERCHANT, "customers complain", {"conversion": 0.02})
    entry = cs.audit_trail()[-1]
    assert entry["actor"] == {"kind": "user", "id": "merchant-1"} and entry["reason"] == "customers complain"
    assert entry["metadata"] == {"conversion": 0.02} and cs.execution["status"] == "rolled_back"


def test_permanent_after_rollback_only_with_a_merchant_confirmation():
    cs = in_state(ROLLED_BACK)
    at = T0 + timedelta(days=3)
    for by, confirmation, code in ((MERCHANT, None, "changeset.confirmation_required"),
                                   (MERCHANT, " ", "changeset.confirmation_required"),
                                   (AUTOPILOT, "yes", "changeset.merchant_required"),
                                   (Actor.system(), "yes", "changeset.merchant_required")):
        with pytest.raises(DomainError) as e:
            cs.make_permanent(at, by, confirmation)
        assert e.value.code == code and cs.state == ROLLED_BACK
    cs.make_permanent(at, MERCHANT, "I keep it despite the rollback")
    assert cs.state == PERMANENT
    assert cs.audit_trail()[-1]["metadata"] == {"confirmation": "I keep it despite the rollback"}


def test_permanent_after_proof_needs_no_confirmation():
    cs = in_state(PROVEN)
    cs.make_permanent(T0 + timedelta(days=30), AUTOPILOT)
    assert cs.state == PERMANENT and cs.audit_trail()[-1]["metadata"] == {"confirmation": None}


# --- audit trail and storage -----------------------------------------------------------------
def test_the_audit_trail_is_one_entry_per_event_and_replays_from_the_stream():
    cs = in_state(PERMANENT)
    trail = cs.audit_trail()
    assert [e["action"] for e in trail] == [
        "drafted", "submitted_for_approval", "approved", "activated", "measuring_started", "proven",
        "made_permanent",
    ]
    assert [(e["previous_state"], e["new_state"]) for e in trail] == [
        (None, DRAFT), (DRAFT, PENDING_APPROVAL), (PENDING_APPROVAL, PENDING_APPROVAL),
        (PENDING_APPROVAL, ACTIVE), (ACTIVE, MEASURING), (MEASURING, PROVEN), (PROVEN, PERMANENT),
    ]
    assert [e["position"] for e in trail] == list(range(1, 8))
    for entry in trail:
        assert set(entry) == {"position", "action", "actor", "previous_state", "new_state", "reason", "metadata",
                              "at"}
        assert entry["actor"]["kind"] in ("system", "user", "autopilot") and entry["actor"]["id"]
    events = cs.collect_events()
    assert len(events) == len(trail) == cs.version
    assert replay(events).audit_trail() == trail
    trail[0]["metadata"]["evidence"] = "tampered"  # a copy: the aggregate is unchanged
    assert cs.audit_trail()[0]["metadata"]["evidence"] != "tampered"


def test_the_stream_survives_storage():
    app = Application()
    cs = in_state(ROLLED_BACK)
    cs.make_permanent(T0 + timedelta(days=4), MERCHANT, "keep")
    app.save(cs)
    stored = app.repository.get(cs.id)
    assert stored.state == PERMANENT and stored.audit_trail() == cs.audit_trail()
    assert stored.contract == cs.contract and stored.execution == cs.execution and stored.approval == cs.approval


# --- the contract ----------------------------------------------------------------------------
def test_the_contract_round_trips():
    contract = validate_contract(CONTRACT)
    assert validate_contract(contract.model_dump(mode="json")) == contract


def _with(path: str, value):
    data = copy.deepcopy(CONTRACT)
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = value
    return data


@pytest.mark.parametrize(("path", "value"), [
    ("action_plan.rollout_percentage", -1), ("action_plan.rollout_percentage", 100.5),
    ("guardrails.profit_floor_min_margin_pct", 101), ("proof_plan.holdout_pct", -0.1),
    ("proof_plan.holdout_pct", 120), ("proof_plan.minimum_sample_size", 0),
    ("proof_plan.measurement_window_days", 0), ("proof_plan.significance_threshold", 0),
    ("proof_plan.significance_threshold", 1), ("proof_plan.significance_threshold", 1.5),
    ("proof_plan.method", "bootstrap"), ("proof_plan.primary_metrics", []),
    ("hypothesis.confidence", "certain"), ("action_plan.type", "price_change"),
    ("action_plan.rollout_strategy", "canary"), ("guardrails.risk_level", "extreme"),
    ("guardrails.stock_threshold", -1), ("rollback_plan.estimated_rollback_time_minutes", -5),
    ("rollback_plan.auto_rollback_triggers", [{"metric": "x", "threshold": 1, "direction": "sideways"}]),
    ("action_plan.implementation", {"changes": []}),  # a feature flag without its key
    ("hypothesis.problem", ""), ("hypothesis.unknown", "x"),
])
def test_the_contract_refuses_invalid_values(path, value):
    with pytest.raises(DomainError) as e:
        validate_contract(_with(path, value))
    assert e.value.code == "changeset.invalid_contract"
    assert e.value.field.startswith(path.split(".")[0])
    with pytest.raises(DomainError):
        ChangeSet.draft(uuid4(), store_id=uuid4(), contract=_with(path, value), at=T0, actor=MERCHANT)


@pytest.mark.parametrize(("path", "value"), [
    ("action_plan.rollout_percentage", 0), ("action_plan.rollout_percentage", 100),
    ("proof_plan.holdout_pct", 0), ("proof_plan.minimum_sample_size", 1),
    ("proof_plan.measurement_window_days", 1), ("proof_plan.significance_threshold", 0.999),
])
def test_the_contract_accepts_the_bounds(path, value):
    validate_contract(_with(path, value))


def test_every_enum_is_exactly_the_spec():
    from typing import get_args

    from domain import changeset_contract as c

    assert set(get_args(c.Confidence)) == {"low", "medium", "high"}
    assert set(get_args(c.ActionType)) == {"feature_flag", "workflow", "copy_change", "timing_change",
                                           "segment_target"}
    assert set(get_args(c.RolloutStrategy)) == {"immediate", "gradual", "holdout"}
    assert set(get_args(c.ProofMethod)) == {"bayesian", "frequentist", "cuped"}
    assert set(get_args(c.ApprovalStatus)) == {"pending", "approved", "rejected", "expired"}
    assert set(get_args(c.ActorKind)) == {"system", "user", "autopilot"}


# --- random sequences of commands -------------------------------------------------------------
ACTORS = st.sampled_from([MERCHANT, AUTOPILOT, Actor.system()])
TEXT = st.sampled_from([None, "", "keep it", "reason"])


class ChangeSetMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.cs = new()
        self.at = T0
        self.events = list(self.cs.collect_events())

    def _run(self, action, hours):
        self.at = self.at + timedelta(hours=hours)
        before = self.cs.state
        try:
            action(self.at)
        except DomainError:
            assert self.cs.state == before
        self.events += self.cs.collect_events()

    @rule(hours=st.integers(0, 48), days=st.integers(-1, 10))
    def submit(self, hours, days):
        self._run(lambda at: self.cs.submit_for_approval(at, timedelta(days=days)), hours)

    @rule(hours=st.integers(0, 48), by=ACTORS, force=st.booleans(), confirmation=TEXT,
          violations=st.lists(st.sampled_from(["stock_threshold", "profit_floor"]), max_size=2))
    def approve(self, hours, by, force, confirmation, violations):
        self._run(lambda at: self.cs.approve(by, at, "notes", force, confirmation, violations=violations), hours)

    @rule(hours=st.integers(0, 48), by=ACTORS, reason=TEXT)
    def reject(self, hours, by, reason):
        self._run(lambda at: self.cs.reject(by, at, reason), hours)

    @rule(hours=st.integers(0, 24 * 9), wait=st.booleans())
    def expire(self, hours, wait):
        self._run(self.cs.expire, hours if wait else 0)

    @rule(hours=st.integers(0, 48))
    def activate(self, hours):
        self._run(self.cs.activate, hours)

    @rule(hours=st.integers(0, 48))
    def start_measuring(self, hours):
        self._run(self.cs.start_measuring, hours)

    @rule(hours=st.integers(0, 48), numbers=st.dictionaries(st.sampled_from(["a", "b"]), st.floats(-1, 1),
                                                            max_size=2))
    def prove(self, hours, numbers):
        self._run(lambda at: self.cs.prove(at, numbers), hours)

    @rule(hours=st.integers(0, 48), by=ACTORS, reason=TEXT)
    def roll_back(self, hours, by, reason):
        self._run(lambda at: self.cs.roll_back(at, by, reason, {"x": 1}), hours)

    @rule(hours=st.integers(0, 48), by=ACTORS, confirmation=TEXT)
    def make_permanent(self, hours, by, confirmation):
        self._run(lambda at: self.cs.make_permanent(at, by, confirmation), hours)

    @rule(hours=st.integers(0, 48), pick=st.integers(0, 3))
    def advance(self, hours, pick):
        """A well-formed command towards one of the states the table allows next (so that random runs
        reach every state); it may still be refused, e.g. an expiry before its time."""
        targets = sorted(TRANSITIONS[self.cs.state])  # ACTIVE before EXPIRED and REJECTED, PROVEN before ROLLED_BACK
        if not targets:
            return
        target = targets[pick] if pick < len(targets) else targets[0]

        def go(at):
            if target == ACTIVE and self.cs.approval["status"] == "pending":
                self.cs.approve(MERCHANT, at, "go")
            command(self.cs, target, at)

        self._run(go, hours)

    @rule(hours=st.integers(0, 24), pick=st.integers(0, 3))
    def advance_again(self, hours, pick):
        self.advance(hours, pick)

    @invariant()
    def only_the_table(self):
        assert self.cs.state in STATES
        for entry in self.cs.audit_trail()[1:]:
            previous, new_state = entry["previous_state"], entry["new_state"]
            assert new_state == previous if entry["action"] == "approved" else new_state in TRANSITIONS[previous]
            if previous == ROLLED_BACK:
                assert entry["actor"]["kind"] == "user" and entry["metadata"]["confirmation"]
            if entry["action"] == "activated":
                assert self.cs.approval["status"] == "approved"

    @invariant()
    def the_stream_replays_to_the_same_state(self):
        replayed = replay(self.events)
        assert replayed.version == self.cs.version == len(self.events)
        assert (replayed.state, replayed.approval, replayed.execution) == (
            self.cs.state, self.cs.approval, self.cs.execution)
        assert replayed.audit_trail() == self.cs.audit_trail()


ChangeSetMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
TestChangeSetMachine = ChangeSetMachine.TestCase
