"""Admin autopilot: ChangeSets (draft, submit, approve, force-approve, reject, roll back, make
permanent), their guardrail check, live metrics and proof, the audit trail as JSON or CSV, the
store's guardrail policy, attribution, and the decider tick on demand.

Reads come from the read model `changesets` (queries/changesets.py); every change is a command
(commands/changeset.py), where the guardrails are enforced. The tick reads the DuckDB warehouse,
so, like the diagnosis run, whoever owns the warehouse answers it (api/routers/analytics.py).
Permissions: autopilot:read to look, autopilot:write to draft and submit and set guardrails,
autopilot:approve to decide (approve, reject, roll back, make permanent).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import with_examples
from api.problems import ApiProblem
from api.routers.analytics import on_warehouse
from api.services import Services, services
from autopilot.decider_job import tick_store
from autopilot.playbooks import contract_for
from commands import changeset as cs
from commands import guardrail_facts
from domain.changeset import ChangeSet
from domain.errors import NotFound
from domain.store import Store
from queries.changesets import AuditEntry, ChangeSetDetail, ChangeSetQueries, ChangeSetSummary, audit_csv
from queries.attribution import attribution_report
from queries.changesets import recent_daily_units
from queries.diagnosis import DiagnosisQueries

router = APIRouter(prefix="/v1/admin/autopilot", tags=["admin: autopilot"])
# The tick reads the warehouse: the analytics worker serves it too (api/cli_analytics.py).
tick_router = APIRouter(prefix="/v1/admin/autopilot", tags=["admin: autopilot"])

UNAVAILABLE = {503: {"description": "The analytics warehouse is not reachable from here (Retry-After)"}}
State = Literal["DRAFT", "PENDING_APPROVAL", "ACTIVE", "MEASURING", "PROVEN", "PERMANENT", "REJECTED", "EXPIRED",
                "ROLLED_BACK"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _queries(svc: Services) -> ChangeSetQueries:
    return ChangeSetQueries(svc.views)


def _policy(find, store_id: UUID) -> dict | None:
    store = find(Store, store_id)
    return getattr(store, "guardrail_policy", None) if store is not None else None


class Transition(BaseModel):
    changeset_id: UUID
    state: str
    approval: str
    version: int


class Approved(Transition):
    forced: bool
    violations: list[dict[str, Any]] = Field(description="The guardrails it broke when approved (forced only)")


class NewChangeSet(BaseModel):
    model_config = with_examples({"contract": {"hypothesis": {"problem": "…"}}, "reason": "my own idea"})
    contract: dict[str, Any] = Field(description="The ChangeSet contract of AUTOPILOT.md §3 (docs/autopilot.md)")
    reason: str | None = Field(default=None, max_length=2000)


class FromRecommendation(BaseModel):
    skus: list[str] = Field(default_factory=list, max_length=500,
                            description="For a price-change playbook: the SKUs the discount applies to")


class Submission(BaseModel):
    expires_in_days: float = Field(default=7, gt=0, le=90, description="How long the request may wait for a decision")


class Approval(BaseModel):
    notes: str | None = Field(default=None, max_length=2000)


class ForcedApproval(BaseModel):
    model_config = with_examples({"notes": "clearance sale", "guardrail_confirmation":
                                  "I accept the margin on SKU-4521 below the 25 % floor for two weeks"})
    notes: str | None = Field(default=None, max_length=2000)
    guardrail_confirmation: str = Field(min_length=1, max_length=2000,
                                        description="In the merchant's words: which guardrails they override and why")


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Confirmation(BaseModel):
    confirmation: str | None = Field(default=None, max_length=2000,
                                     description="Required to make a rolled-back ChangeSet permanent")


class GuardrailCheck(BaseModel):
    changeset_id: UUID
    passes: bool
    violations: list[dict[str, Any]] = Field(description="Each with field, code, reason, sku and the adjustment that "
                                                         "would pass")


class GuardrailPolicyBody(BaseModel):
    model_config = with_examples({"margin_floor_pct": 25, "margin_floor_by_category": {"coffee": 30},
                                  "max_discount_pct": 20, "min_stock_units": 5, "min_days_of_cover": 7,
                                  "excluded_categories": ["gift-cards"]})
    margin_floor_pct: float = Field(ge=0, lt=100, description="Minimum margin % after discount, cost and fees")
    margin_floor_by_category: dict[str, float] = Field(default_factory=dict)
    margin_floor_by_sku: dict[str, float] = Field(default_factory=dict)
    max_discount_pct: float | None = Field(default=None, ge=0, le=100)
    min_stock_units: int | None = Field(default=None, ge=0)
    min_days_of_cover: float | None = Field(default=None, ge=0)
    excluded_categories: list[str] = Field(default_factory=list, max_length=1000)
    payment_fee_bp: int = Field(default=guardrail_facts.DEFAULT_FEE_BP, ge=0, lt=10_000)
    payment_fee_fixed_minor: int = Field(default=guardrail_facts.DEFAULT_FEE_FIXED_MINOR, ge=0)


class LiveMetrics(BaseModel):
    changeset_id: UUID
    state: str
    latest_metrics: dict[str, float]
    latest_decision: dict[str, Any] | None
    proof_result: dict[str, Any] | None
    second_opinion: dict[str, Any] | None


# --- reading ----------------------------------------------------------------------------------------


@router.get("/changesets", summary="The store's ChangeSets, newest first", response_model=list[ChangeSetSummary],
            **admin_route("autopilot:read"))
def list_changesets(state: list[State] | None = Query(default=None), principal: Principal = Depends(require("autopilot:read")),
                    svc: Services = Depends(services), min_position: MinPosition = None):
    return _queries(svc).list(principal.ctx, states=state, min_position=min_position)


@router.get("/changesets/{changeset_id}", summary="One ChangeSet: contract, approval, execution, latest decision",
            response_model=ChangeSetDetail, **admin_route("autopilot:read"))
def changeset_detail(changeset_id: UUID, principal: Principal = Depends(require("autopilot:read")),
                     svc: Services = Depends(services), min_position: MinPosition = None):
    return _queries(svc).detail(principal.ctx, changeset_id, min_position=min_position)


@router.get("/changesets/{changeset_id}/metrics", summary="Live metrics and proof result (as of the last decider tick)",
            response_model=LiveMetrics, **admin_route("autopilot:read"))
def changeset_metrics(changeset_id: UUID, principal: Principal = Depends(require("autopilot:read")),
                      svc: Services = Depends(services), min_position: MinPosition = None):
    detail = _queries(svc).detail(principal.ctx, changeset_id, min_position=min_position)
    return LiveMetrics(changeset_id=detail.changeset_id, state=detail.state, latest_metrics=detail.latest_metrics,
                       latest_decision=detail.latest_decision, proof_result=detail.proof_result,
                       second_opinion=detail.second_opinion)


def _audit_answer(entries: list[AuditEntry], fmt: str, filename: str):
    if fmt == "csv":
        return Response(audit_csv(entries), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
    return entries


AUDIT_RESPONSES = {200: {"content": {"text/csv": {}}, "description": "JSON entries, or CSV with format=csv"}}


@router.get("/changesets/{changeset_id}/audit", summary="A ChangeSet's audit trail (JSON, or CSV with format=csv)",
            response_model=list[AuditEntry], responses=AUDIT_RESPONSES, **admin_route("autopilot:read"))
def changeset_audit(changeset_id: UUID, format: Literal["json", "csv"] = "json",
                    principal: Principal = Depends(require("autopilot:read")), svc: Services = Depends(services),
                    min_position: MinPosition = None):
    entries = _queries(svc).audit(principal.ctx, changeset_id, min_position=min_position)
    return _audit_answer(entries, format, f"changeset-{changeset_id}-audit")


@router.get("/audit", summary="The store's autopilot audit trail (JSON, or CSV with format=csv)",
            response_model=list[AuditEntry], responses=AUDIT_RESPONSES, **admin_route("autopilot:read"))
def store_audit(format: Literal["json", "csv"] = "json", since: datetime | None = None, until: datetime | None = None,
                principal: Principal = Depends(require("autopilot:read")), svc: Services = Depends(services),
                min_position: MinPosition = None):
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ApiProblem(422, "validation.timezone_required", "must carry a time zone", field=name)
    entries = _queries(svc).audit(principal.ctx, since=since, until=until, min_position=min_position)
    return _audit_answer(entries, format, "autopilot-audit")


@router.get("/changesets/{changeset_id}/guardrails", summary="Check the guardrails now, without approving",
            response_model=GuardrailCheck, **admin_route("autopilot:read"))
def check_guardrails(changeset_id: UUID, principal: Principal = Depends(require("autopilot:read")),
                     svc: Services = Depends(services)):
    find = guardrail_facts.finder(svc.app, principal.store_id)
    changeset = find(ChangeSet, changeset_id)
    if changeset is None:
        raise NotFound("changeset", changeset_id)
    skus = [c.sku for c in guardrail_facts.price_changes(changeset.contract)]
    units = recent_daily_units(svc.views, principal.store_id, skus, _now())
    violations = guardrail_facts.violations_for(find, principal.store_id, _policy(find, principal.store_id),
                                                changeset.contract, units)
    problems = [guardrail_facts.as_problem(v) for v in violations]
    return GuardrailCheck(changeset_id=changeset_id, passes=not problems, violations=problems)


@router.get("/guardrails", summary="The store's guardrail policy (null until set)",
            response_model=GuardrailPolicyBody | None, **admin_route("autopilot:read"))
def get_guardrails(principal: Principal = Depends(require("autopilot:read")), svc: Services = Depends(services)):
    return _policy(guardrail_facts.finder(svc.app, principal.store_id), principal.store_id)


@router.get("/attribution", summary="Attributed uplift of proven ChangeSets and the cumulative improvement",
            **admin_route("autopilot:read"))
def attribution(days: int = Query(default=90, ge=1, le=730), principal: Principal = Depends(require("autopilot:read")),
                svc: Services = Depends(services), min_position: MinPosition = None):
    return attribution_report(_queries(svc), principal.ctx, _now(), days=days, min_position=min_position)


# --- changing ---------------------------------------------------------------------------------------


@router.post("/changesets", summary="Draft a ChangeSet of your own", response_model=Transition, status_code=201,
             **admin_route("autopilot:write"))
def draft(body: NewChangeSet, principal: Principal = Depends(require("autopilot:write")),
          gateway: CommandGateway = Depends(command_gateway)):
    command = cs.DraftChangeSet(changeset_id=uuid4(), contract=body.contract, reason=body.reason, at=_now())
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/recommendations/{recommendation_id}/draft", summary="Draft the ChangeSet a recommendation proposes",
             response_model=Transition, status_code=201, **admin_route("autopilot:write"))
def draft_from_recommendation(recommendation_id: UUID, body: FromRecommendation | None = Body(default=None),
                              principal: Principal = Depends(require("autopilot:write")),
                              svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway),
                              min_position: MinPosition = None):
    recommendation = DiagnosisQueries(svc.views).recommendation(principal.ctx, recommendation_id,
                                                                min_position=min_position)
    command = cs.DraftChangeSetFromRecommendation(
        recommendation_id=recommendation_id, contract=contract_for(recommendation, skus=body.skus if body else []),
        evidence=recommendation["evidence"], at=_now())
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/changesets/{changeset_id}/submit", summary="Ask for approval (expires after 7 days by default)",
             response_model=Transition, **admin_route("autopilot:write"))
def submit(changeset_id: UUID, body: Submission | None = Body(default=None),
           principal: Principal = Depends(require("autopilot:write")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = cs.SubmitChangeSet(changeset_id=changeset_id, at=_now(),
                                 expires_in_days=body.expires_in_days if body else 7)
    return gateway.run(command, principal.ctx, payload=body).data


def _approve(changeset_id: UUID, principal: Principal, svc: Services, gateway: CommandGateway, *, notes: str | None,
             force: bool, confirmation: str | None, payload: BaseModel | None):
    changeset = guardrail_facts.finder(svc.app, principal.store_id)(ChangeSet, changeset_id)
    if changeset is not None:
        flag_key = changeset.contract.action_plan.implementation.flag_key
        holder = next((f for f in _queries(svc).live_flags(principal.store_id) if f.flag_key == flag_key), None)
        if holder is not None and holder.changeset_id != changeset_id:
            # one flag, one experiment: two would split the same visitors twice and measure neither
            raise ApiProblem(409, "changeset.flag_in_use", f"flag {flag_key} is already served by ChangeSet "
                             f"{holder.changeset_id} ({holder.state}); end it first", field="flag_key")
    skus = [c.sku for c in guardrail_facts.price_changes(changeset.contract)] if changeset is not None else []
    command = cs.ApproveChangeSet(changeset_id=changeset_id, at=_now(), notes=notes, force=force,
                                  guardrail_confirmation=confirmation,
                                  daily_units_sold=recent_daily_units(svc.views, principal.store_id, skus, _now()))
    return gateway.run(command, principal.ctx, payload=payload).data


@router.post("/changesets/{changeset_id}/approve", summary="Approve and start the experiment (409 when guardrails "
             "block it, with the reason and the adjustment that would pass)", response_model=Approved,
             **admin_route("autopilot:approve"))
def approve(changeset_id: UUID, body: Approval | None = Body(default=None),
            principal: Principal = Depends(require("autopilot:approve")), svc: Services = Depends(services),
            gateway: CommandGateway = Depends(command_gateway)):
    return _approve(changeset_id, principal, svc, gateway, notes=body.notes if body else None, force=False,
                    confirmation=None, payload=body)


@router.post("/changesets/{changeset_id}/force-approve", summary="Approve despite blocking guardrails, with a written "
             "confirmation that is recorded", response_model=Approved, **admin_route("autopilot:approve"))
def force_approve(changeset_id: UUID, body: ForcedApproval, principal: Principal = Depends(require("autopilot:approve")),
                  svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    return _approve(changeset_id, principal, svc, gateway, notes=body.notes, force=True,
                    confirmation=body.guardrail_confirmation, payload=body)


@router.post("/changesets/{changeset_id}/reject", summary="Reject a pending ChangeSet", response_model=Transition,
             **admin_route("autopilot:approve"))
def reject(changeset_id: UUID, body: Reason, principal: Principal = Depends(require("autopilot:approve")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = cs.RejectChangeSet(changeset_id=changeset_id, reason=body.reason, at=_now())
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/changesets/{changeset_id}/rollback", summary="Roll back now: every visitor gets control at once",
             response_model=Transition, **admin_route("autopilot:approve"))
def rollback(changeset_id: UUID, body: Reason, principal: Principal = Depends(require("autopilot:approve")),
             gateway: CommandGateway = Depends(command_gateway)):
    command = cs.RollBackChangeSet(changeset_id=changeset_id, reason=body.reason, at=_now())
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/changesets/{changeset_id}/make-permanent", summary="Keep the change for good (from ROLLED_BACK only "
             "with an explicit confirmation)", response_model=Transition, **admin_route("autopilot:approve"))
def make_permanent(changeset_id: UUID, body: Confirmation | None = Body(default=None),
                   principal: Principal = Depends(require("autopilot:approve")),
                   gateway: CommandGateway = Depends(command_gateway)):
    command = cs.MakeChangeSetPermanent(changeset_id=changeset_id, at=_now(),
                                        confirmation=body.confirmation if body else None)
    return gateway.run(command, principal.ctx, payload=body).data


@router.put("/guardrails", summary="Set the store's guardrail policy", response_model=GuardrailPolicyBody,
            **admin_route("autopilot:write"))
def set_guardrails(body: GuardrailPolicyBody, principal: Principal = Depends(require("autopilot:write")),
                   gateway: CommandGateway = Depends(command_gateway)):
    command = cs.SetGuardrailPolicy(**body.model_dump())
    return gateway.run(command, principal.ctx, payload=body).data["guardrails"]


@tick_router.post("/tick", summary="Run the decider for this store now (as the scheduled tick does)",
                  responses=UNAVAILABLE, **admin_route("autopilot:approve"))
async def tick_now(request: Request, principal: Principal = Depends(require("autopilot:approve")),
                   svc: Services = Depends(services)):
    def run(warehouse):
        with warehouse.reading() as cur:
            return tick_store(cur, svc.bus, svc.views, principal.store_id, _now())

    return await on_warehouse(request, svc, run)
