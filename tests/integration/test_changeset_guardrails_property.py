"""Guardrails, as a property over random catalogues and discounts: no ChangeSet ever activates with a
margin below its floor unless a merchant force-approved it (issue 8). Driven through the real command
bus and event store; the margin is recomputed here from first principles, not with the guardrail code."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.catalog import AddVariant, CreateProduct
from commands.changeset import ApproveChangeSet, DraftChangeSet, SetGuardrailPolicy, SubmitChangeSet
from commands.context import StoreContext
from commands.stock import ReceiveStock
from commands.store import OpenStore
from domain import ids
from domain.changeset import ChangeSet
from domain.errors import DomainError

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store_kind", ["sqlite"])]

FEE_BP, FEE_FIXED = 140, 25
NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)


def true_margin_pct(price: int, discount_pct: float, cost: int) -> Fraction | None:
    """(charged − cost − fee) / charged × 100, the discount rounded half up to a minor unit."""
    discount = int(Fraction(price) * Fraction(str(discount_pct)) / 100 + Fraction(1, 2))
    charged = price - discount
    if charged <= 0:
        return None
    fee = Fraction(charged * FEE_BP, 10_000) + FEE_FIXED
    return (charged - cost - fee) / charged * 100


products = st.lists(
    st.tuples(st.integers(100, 100_000), st.floats(0.05, 0.95), st.sampled_from(["coffee", "tea", "gear"])),
    min_size=1, max_size=4,
)


def _contract(changes: list[dict]) -> dict:
    return {
        "hypothesis": {"problem": "p", "expected_outcome": "o", "confidence": "low"},
        "action_plan": {"type": "feature_flag", "target_segment": "all", "rollout_strategy": "holdout",
                        "rollout_percentage": 50, "implementation": {"flag_key": "pricing.sale", "changes": changes}},
        "guardrails": {"profit_floor_min_margin_pct": 0, "stock_threshold": 0, "risk_level": "high"},
        "rollback_plan": {"procedure": "off", "estimated_rollback_time_minutes": 1},
        "proof_plan": {"primary_metrics": ["gross_profit_per_visitor"], "holdout_pct": 50, "method": "bayesian",
                       "minimum_sample_size": 100, "measurement_window_days": 14, "significance_threshold": 0.05},
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogue=products, discounts=st.lists(st.floats(0, 100, allow_nan=False), min_size=4, max_size=4),
       floor=st.floats(0, 60), category_floor=st.one_of(st.none(), st.floats(0, 80)), force=st.booleans())
def test_no_changeset_activates_below_its_floor_unless_forced(bus, app, catalogue, discounts, floor, category_floor,
                                                             force):
    slug = f"g-{uuid4().hex[:10]}"
    ctx = StoreContext(store_id=ids.store_id(slug), actor="user:merchant")
    bus.execute(OpenStore(slug=slug, name="G", currency="EUR", prices_include_tax=False, origin_country="DE"), ctx)
    floors = {"coffee": category_floor} if category_floor is not None else {}
    bus.execute(SetGuardrailPolicy(margin_floor_pct=floor, margin_floor_by_category=floors,
                                   payment_fee_bp=FEE_BP, payment_fee_fixed_minor=FEE_FIXED), ctx)
    changes, facts = [], {}
    for i, (price, cost_share, category) in enumerate(catalogue):
        sku = f"SKU-{i}"
        product = bus.execute(CreateProduct(handle=f"p{i}", title=f"P{i}", categories=[category]), ctx).data
        cost = int(price * cost_share)
        bus.execute(AddVariant(product_id=product["product_id"], sku=sku, price=price, unit_cost=cost), ctx)
        bus.execute(ReceiveStock(sku=sku, quantity=50), ctx)
        discount = round(discounts[i], 2)
        changes.append({"sku": sku, "discount_pct": discount})
        facts[sku] = (price, discount, cost, category_floor if category == "coffee" and category_floor is not None
                      else floor)
    changeset_id = uuid4()
    bus.execute(DraftChangeSet(changeset_id=changeset_id, contract=_contract(changes), at=NOW), ctx)
    bus.execute(SubmitChangeSet(changeset_id=changeset_id, at=NOW), ctx)
    try:
        bus.execute(ApproveChangeSet(changeset_id=changeset_id, at=NOW, force=force,
                                     guardrail_confirmation="I accept" if force else None), ctx)
    except DomainError as error:
        assert error.code == "changeset.guardrails_blocked"
    changeset = app.repository.get(changeset_id)
    assert isinstance(changeset, ChangeSet)
    below = [sku for sku, (price, discount, cost, sku_floor) in facts.items()
             if (m := true_margin_pct(price, discount, cost)) is None or m < Fraction(str(sku_floor))]
    if changeset.state == "ACTIVE":
        approval = next(e for e in changeset.audit_trail() if e["action"] == "approved")
        if below:
            assert approval["metadata"]["forced"] is True
            assert {v["sku"] for v in approval["metadata"]["violations"]} >= set(below)
    else:
        assert changeset.state == "PENDING_APPROVAL" and below and not force
