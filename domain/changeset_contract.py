"""The ChangeSet contract (AUTOPILOT.md §3): what a change claims, does, must not break, how it is
undone and how it is proven. Pydantic models, validated once when a ChangeSet is drafted; the
aggregate stores the validated contract as plain JSON (`model_dump(mode="json")`).

Enums are exactly those of §3. Percentages are 0–100; the significance threshold is in (0, 1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.errors import InvalidValue

Confidence = Literal["low", "medium", "high"]
ActionType = Literal["feature_flag", "workflow", "copy_change", "timing_change", "segment_target"]
RolloutStrategy = Literal["immediate", "gradual", "holdout"]
RiskLevel = Literal["low", "medium", "high"]
ProofMethod = Literal["bayesian", "frequentist", "cuped"]
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]
ActorKind = Literal["system", "user", "autopilot"]
TriggerDirection = Literal["above", "below"]

Percentage = Annotated[float, Field(ge=0, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Model):
    """Who did something: the platform (`system`), a merchant's user, or the autopilot."""

    kind: ActorKind
    id: str = Field(min_length=1)

    @classmethod
    def system(cls, id: str = "trafi") -> Actor:
        return cls(kind="system", id=id)

    @classmethod
    def user(cls, id: str) -> Actor:
        return cls(kind="user", id=str(id))

    @classmethod
    def autopilot(cls, id: str = "autopilot") -> Actor:
        return cls(kind="autopilot", id=id)


class MetricPoint(_Model):
    """One number of the evidence: a metric's value, for a period and segment when they matter."""

    metric: str = Field(min_length=1)
    value: float
    period: str | None = None
    segment: str | None = None


class Hypothesis(_Model):
    problem: str = Field(min_length=1)
    expected_outcome: str = Field(min_length=1)
    confidence: Confidence
    data_evidence: list[MetricPoint] = Field(default_factory=list)


class Implementation(_Model):
    flag_key: str | None = None
    workflow_id: str | None = None
    changes: list[dict] = Field(default_factory=list)


class ActionPlan(_Model):
    type: ActionType
    target_segment: str = Field(min_length=1)
    implementation: Implementation
    rollout_strategy: RolloutStrategy
    rollout_percentage: Percentage

    @model_validator(mode="after")
    def _implementation_matches_type(self) -> ActionPlan:
        if self.type == "feature_flag" and not self.implementation.flag_key:
            raise ValueError("a feature_flag action needs implementation.flag_key")
        if self.type == "workflow" and not self.implementation.workflow_id:
            raise ValueError("a workflow action needs implementation.workflow_id")
        return self


class Guardrails(_Model):
    profit_floor_min_margin_pct: Percentage
    stock_threshold: int = Field(ge=0)
    slo_requirements: dict[str, float] = Field(default_factory=dict)
    risk_level: RiskLevel
    blocked_conditions: list[str] = Field(default_factory=list)


class RollbackTrigger(_Model):
    metric: str = Field(min_length=1)
    threshold: float
    direction: TriggerDirection


class RollbackPlan(_Model):
    auto_rollback_triggers: list[RollbackTrigger] = Field(default_factory=list)
    manual_rollback_enabled: bool = True
    procedure: str = Field(min_length=1)
    estimated_rollback_time_minutes: int = Field(ge=0)


class ProofPlan(_Model):
    primary_metrics: list[str] = Field(min_length=1)
    secondary_metrics: list[str] = Field(default_factory=list)  # the guard metrics
    holdout_pct: Percentage
    method: ProofMethod
    minimum_sample_size: int = Field(ge=1)
    measurement_window_days: int = Field(ge=1)
    significance_threshold: float = Field(gt=0, lt=1)


class Approval(_Model):
    status: ApprovalStatus = "pending"
    by: Actor | None = None
    at: datetime | None = None
    notes: str | None = None
    expires_at: datetime | None = None


class Execution(_Model):
    status: str = "not_started"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    latest_metrics: dict[str, float] = Field(default_factory=dict)
    proof_result: dict | None = None


class ChangeSetContract(_Model):
    """The parts a ChangeSet is drafted with. Approval and execution follow from its events."""

    hypothesis: Hypothesis
    action_plan: ActionPlan
    guardrails: Guardrails
    rollback_plan: RollbackPlan
    proof_plan: ProofPlan


def validate_contract(contract: ChangeSetContract | dict) -> ChangeSetContract:
    """The contract, validated; a domain error (`changeset.invalid_contract`) naming the first problem otherwise."""
    if isinstance(contract, ChangeSetContract):
        return contract
    try:
        return ChangeSetContract.model_validate(contract)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "contract"
        raise InvalidValue(field, first["msg"], code="changeset.invalid_contract") from None
