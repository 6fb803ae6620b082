"""Storefront flags: which variant of every live ChangeSet this visitor gets (AUTOPILOT.md §4).

Deterministic (a hash of store, flag and visitor), so asking twice gives the same answer and
needs no storage; the first answer per visitor and experiment records an exposure. The
storefront renders what the variants say; the API itself changes behaviour for the built-in
playbook flags (PLAYBOOK_FLAGS below), e.g. GET /v1/carts/{id}?visitor_id=… includes an early
shipping estimate for the treated visitors of `checkout.shipping_estimate_on_cart`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.auth import Principal, storefront
from api.examples import with_examples
from api.services import Services, services

router = APIRouter(prefix="/v1/storefront", tags=["storefront: flags"])

# The playbook flags the API itself acts on (autopilot/data/funnel_benchmarks.json names them)
SHIPPING_ESTIMATE_ON_CART = "checkout.shipping_estimate_on_cart"  # the cart shows shipping before the address
GUEST_CHECKOUT_DEFAULT = "checkout.guest_default"  # the cart says: offer guest checkout first
TRUST_BADGES = "checkout.trust_badges"  # the cart says: show payment trust signals

VISITOR_ID = {"min_length": 1, "max_length": 128, "pattern": r"^[A-Za-z0-9._-]+$",
              "description": "The storefront's visitor id (as in /v1/events)"}
VisitorId = Annotated[str, Query(**VISITOR_ID)]
OptionalVisitorId = Annotated[str | None, Query(**VISITOR_ID)]


class FlagAssignment(BaseModel):
    variant: Literal["treatment", "control", "off"]
    reason: str = Field(description="rollout | holdout | not_in_rollout | global_holdout")
    changeset_id: str


class VisitorFlags(BaseModel):
    model_config = with_examples({"visitor_id": "v-7f3a", "flags": {"checkout.shipping_estimate_on_cart": {
        "variant": "treatment", "reason": "rollout", "changeset_id": "0b6c1a4e-5f0e-5c2e-9a77-1f1d0d0b2c11"}}})
    visitor_id: str
    flags: dict[str, FlagAssignment] = Field(description="Every live flag of the store; absent flags are off")


@router.get("/flags", summary="This visitor's variant of every live flag (records first exposures)",
            response_model=VisitorFlags)
async def visitor_flags(visitor_id: VisitorId, principal: Principal = Depends(storefront),
                        svc: Services = Depends(services)):
    # async: evaluating is microseconds of hashing, not worth a thread hop; only the once-a-second
    # rule refresh reads the database (in the thread pool), and first exposures are queued for the
    # exposure writer (autopilot/flags/exposures.py ExposureWriter), which syncs them off this path
    evaluation = svc.flags.assign(principal.store_id, visitor_id) if svc.flags.fresh(principal.store_id) else \
        await run_in_threadpool(svc.flags.assign, principal.store_id, visitor_id)
    svc.flags.record(evaluation)
    return VisitorFlags(visitor_id=visitor_id, flags={
        key: FlagAssignment(variant=a.variant.value, reason=a.reason.value, changeset_id=evaluation.changesets[key])
        for key, a in evaluation.assignments.items()
    })
