"""Profit guardrails: margin floors, discount cap, stock protection, excluded categories."""

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.guardrails import (
    RULE_EXCLUDED_CATEGORY,
    RULE_MARGIN_FLOOR,
    RULE_MAX_DISCOUNT,
    RULE_MIN_DAYS_OF_COVER,
    RULE_MIN_STOCK_UNITS,
    RULE_UNKNOWN_SKU,
    GuardrailPolicy,
    PriceChange,
    SkuFacts,
    check,
    days_of_cover,
    discount_minor,
    margin_pct,
    max_discount_for_floor,
)

NO_FEES = {"fee_bp": 0, "fee_fixed_minor": 0}


def facts_of(*skus: SkuFacts) -> dict[str, SkuFacts]:
    return {facts.sku: facts for facts in skus}


def sku(name="SKU-4521", category="shoes", price=10_000, cost=6_150, stock=500, daily=1.0) -> SkuFacts:
    return SkuFacts(name, category, price, cost, stock, daily)


def rules(violations) -> list[str]:
    return [violation.rule for violation in violations]


# --- the example from the issue -----------------------------------------------------------


def test_blocked_change_says_why_and_proposes_a_passing_discount():
    # Price 100.00, cost 61.50: a 25 % discount leaves 75.00 → 18 % margin; 18 % leaves 82.00 → 25 %.
    violations = check(GuardrailPolicy(25), facts_of(sku()), [PriceChange("SKU-4521", 25)], **NO_FEES)
    assert len(violations) == 1
    violation = violations[0]
    assert violation.rule == RULE_MARGIN_FLOOR
    assert violation.message == "would reduce margin on SKU-4521 to 18 %, below the 25 % floor"
    assert violation.adjustment == "a discount of at most 18 % keeps SKU-4521 at the 25 % floor"
    assert violation.actual == Decimal(18)
    assert violation.limit == Decimal(25)
    assert violation.max_passing_discount_pct == Decimal("18.00")
    assert check(GuardrailPolicy(25), facts_of(sku()), [PriceChange("SKU-4521", 18)], **NO_FEES) == []


def test_margin_just_below_the_floor_is_not_displayed_as_the_floor():
    # 18.01 % discount → net 8199 → margin 24.99 %: shown as 24.9, never rounded up to 25.
    violations = check(GuardrailPolicy(25), facts_of(sku()), [PriceChange("SKU-4521", 18.01)], **NO_FEES)
    assert violations[0].message == "would reduce margin on SKU-4521 to 24.9 %, below the 25 % floor"


def test_fees_count_against_the_margin():
    # 100.00 with 2.9 % + 0.30: fee 3.20, cost 60.00 → margin 36.8 % at no discount.
    assert margin_pct(10_000, 0, 6_000, fee_bp=290, fee_fixed_minor=30) == Decimal("36.8")
    violations = check(GuardrailPolicy(37), facts_of(sku(cost=6_000)), [PriceChange("SKU-4521", 0)],
                       fee_bp=290, fee_fixed_minor=30)
    assert rules(violations) == [RULE_MARGIN_FLOOR]
    assert violations[0].max_passing_discount_pct is None
    assert violations[0].adjustment == "no discount keeps SKU-4521 at the 37 % floor; leave it out of the change"


def test_full_discount_has_no_margin():
    assert margin_pct(10_000, 10_000, 0, **NO_FEES) is None
    violations = check(GuardrailPolicy(0), facts_of(sku(cost=0)), [PriceChange("SKU-4521", 100)], **NO_FEES)
    assert rules(violations) == [RULE_MARGIN_FLOOR]
    assert "nothing" in violations[0].message
    assert violations[0].max_passing_discount_pct == Decimal("99.99")


# --- floor precedence ---------------------------------------------------------------------


def test_sku_floor_beats_category_floor_beats_store_floor():
    policy = GuardrailPolicy(10, margin_floor_by_category={"shoes": 20}, margin_floor_by_sku={"SKU-1": 30})
    assert policy.margin_floor_for("SKU-1", "shoes") == 30
    assert policy.margin_floor_for("SKU-2", "shoes") == 20
    assert policy.margin_floor_for("SKU-3", "hats") == 10


def test_check_uses_the_floor_that_applies():
    policy = GuardrailPolicy(10, margin_floor_by_category={"shoes": 20}, margin_floor_by_sku={"SKU-1": 30})
    # Cost 70.00, no discount: margin 30 % — passes all three floors; a 5 % discount → 26.3 %.
    skus = facts_of(sku("SKU-1", "shoes", cost=7_000), sku("SKU-2", "shoes", cost=7_000), sku("SKU-3", "hats", cost=7_000))
    changes = [PriceChange(name, 5) for name in skus]
    violations = check(policy, skus, changes, **NO_FEES)
    assert [(v.sku, v.limit) for v in violations] == [("SKU-1", Decimal(30))]


# --- the other rules ----------------------------------------------------------------------


def test_max_discount_is_enforced_and_the_suggestion_respects_both_rules():
    policy = GuardrailPolicy(10, max_discount_pct=15)
    violations = check(policy, facts_of(sku(cost=5_000)), [PriceChange("SKU-4521", 20)], **NO_FEES)
    assert rules(violations) == [RULE_MAX_DISCOUNT]
    assert violations[0].message == "a discount of 20 % on SKU-4521 exceeds the 15 % maximum"
    assert violations[0].max_passing_discount_pct == Decimal(15)
    assert check(policy, facts_of(sku(cost=5_000)), [PriceChange("SKU-4521", 15)], **NO_FEES) == []


def test_excluded_category_blocks_any_change():
    policy = GuardrailPolicy(0, excluded_categories=frozenset({"alcohol"}))
    violations = check(policy, facts_of(sku(category="alcohol", cost=0)), [PriceChange("SKU-4521", 0)], **NO_FEES)
    assert rules(violations) == [RULE_EXCLUDED_CATEGORY]
    assert "'alcohol'" in violations[0].message


def test_stock_at_the_threshold_is_protected():
    policy = GuardrailPolicy(0, min_stock_units=10)
    assert rules(check(policy, facts_of(sku(stock=10, cost=0)), [PriceChange("SKU-4521", 5)], **NO_FEES)) == [
        RULE_MIN_STOCK_UNITS
    ]
    assert check(policy, facts_of(sku(stock=11, cost=0)), [PriceChange("SKU-4521", 5)], **NO_FEES) == []


def test_days_of_cover_below_the_minimum_is_protected():
    policy = GuardrailPolicy(0, min_days_of_cover=14)
    low = check(policy, facts_of(sku(stock=130, daily=10, cost=0)), [PriceChange("SKU-4521", 5)], **NO_FEES)
    assert rules(low) == [RULE_MIN_DAYS_OF_COVER]
    assert low[0].message == "SKU-4521 has 13 days of cover, below the 14-day minimum"
    assert check(policy, facts_of(sku(stock=140, daily=10, cost=0)), [PriceChange("SKU-4521", 5)], **NO_FEES) == []


def test_zero_sales_means_infinite_cover_and_zero_stock_means_none():
    assert days_of_cover(5, 0) == math.inf
    assert days_of_cover(0, 3.5) == 0
    assert days_of_cover(0, 0) == 0
    policy = GuardrailPolicy(0, min_days_of_cover=30, min_stock_units=0)
    assert check(policy, facts_of(sku(stock=1, daily=0, cost=0)), [PriceChange("SKU-4521", 5)], **NO_FEES) == []
    assert rules(check(policy, facts_of(sku(stock=0, daily=0, cost=0)), [PriceChange("SKU-4521", 5)], **NO_FEES)) == [
        RULE_MIN_STOCK_UNITS,
        RULE_MIN_DAYS_OF_COVER,
    ]


def test_unknown_sku_is_blocked():
    assert rules(check(GuardrailPolicy(0), {}, [PriceChange("SKU-9", 5)], **NO_FEES)) == [RULE_UNKNOWN_SKU]


def test_every_broken_rule_is_reported():
    policy = GuardrailPolicy(
        25, max_discount_pct=10, min_stock_units=5, excluded_categories=frozenset({"shoes"})
    )
    violations = check(policy, facts_of(sku(stock=2)), [PriceChange("SKU-4521", 30)], **NO_FEES)
    assert rules(violations) == [RULE_EXCLUDED_CATEGORY, RULE_MIN_STOCK_UNITS, RULE_MAX_DISCOUNT, RULE_MARGIN_FLOOR]


# --- the suggested discount is exact ------------------------------------------------------


def margin_passes(price, cost, floor, discount_pct, fee_bp, fee_fixed):
    facts = facts_of(SkuFacts("SKU-1", "any", price, cost, 100, 1))
    return check(GuardrailPolicy(floor), facts, [PriceChange("SKU-1", discount_pct)],
                 fee_bp=fee_bp, fee_fixed_minor=fee_fixed) == []


@settings(max_examples=300, deadline=None)
@given(
    price=st.integers(1, 10_000_000),
    cost_share=st.fractions(0, 1),
    floor=st.decimals(0, "99.99", places=2),
    fee_bp=st.integers(0, 1_000),
    fee_fixed=st.integers(0, 100),
)
def test_max_discount_passes_and_one_basis_point_more_fails(price, cost_share, floor, fee_bp, fee_fixed):
    cost = int(price * cost_share)
    best = max_discount_for_floor(price, cost, floor, fee_bp=fee_bp, fee_fixed_minor=fee_fixed)
    if best is None:
        assert not margin_passes(price, cost, floor, 0, fee_bp, fee_fixed)
        return
    assert margin_passes(price, cost, floor, best, fee_bp, fee_fixed)
    if best < 100:
        assert not margin_passes(price, cost, floor, best + Decimal("0.01"), fee_bp, fee_fixed)


@given(price=st.integers(1, 10_000_000), bp=st.integers(0, 10_000))
def test_discount_in_minor_units_is_a_rounded_share_of_the_price(price, bp):
    discount = discount_minor(price, Decimal(bp) / 100)
    assert 0 <= discount <= price
    assert abs(discount * 10_000 - price * bp) <= 5_000


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"margin_floor_pct": -1}, "margin_floor_pct"),
        ({"margin_floor_pct": 100}, "margin_floor_pct"),
        ({"margin_floor_pct": math.nan}, "margin_floor_pct"),
        ({"margin_floor_pct": True}, "margin_floor_pct"),
        ({"margin_floor_pct": 10, "margin_floor_by_category": {"shoes": 120}}, "margin_floor_by_category"),
        ({"margin_floor_pct": 10, "margin_floor_by_category": {"": 10}}, "margin_floor_by_category"),
        ({"margin_floor_pct": 10, "margin_floor_by_sku": {"SKU-1": -5}}, "margin_floor_by_sku"),
        ({"margin_floor_pct": 10, "margin_floor_by_sku": [("SKU-1", 5)]}, "margin_floor_by_sku"),
        ({"margin_floor_pct": 10, "max_discount_pct": 101}, "max_discount_pct"),
        ({"margin_floor_pct": 10, "min_stock_units": -1}, "min_stock_units"),
        ({"margin_floor_pct": 10, "min_stock_units": 2.5}, "min_stock_units"),
        ({"margin_floor_pct": 10, "min_days_of_cover": -1}, "min_days_of_cover"),
        ({"margin_floor_pct": 10, "min_days_of_cover": math.inf}, "min_days_of_cover"),
        ({"margin_floor_pct": 10, "excluded_categories": "shoes"}, "excluded_categories"),
    ],
)
def test_policy_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GuardrailPolicy(**kwargs)


def test_policy_is_frozen_and_does_not_share_the_callers_dict():
    floors = {"shoes": 20}
    policy = GuardrailPolicy(10, margin_floor_by_category=floors, excluded_categories={"alcohol"})
    floors["shoes"] = 90
    assert policy.margin_floor_for("SKU-1", "shoes") == 20
    assert policy.excluded_categories == frozenset({"alcohol"})
    with pytest.raises(AttributeError):
        policy.margin_floor_pct = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "shoes", 100, 50, 1, 1), "sku"),
        (("S", "", 100, 50, 1, 1), "category"),
        (("S", "shoes", 0, 50, 1, 1), "price_minor"),
        (("S", "shoes", 99.5, 50, 1, 1), "price_minor"),
        (("S", "shoes", 100, -1, 1, 1), "unit_cost_minor"),
        (("S", "shoes", 100, 50, -1, 1), "stock_units"),
        (("S", "shoes", 100, 50, 1, -0.1), "daily_units_sold"),
    ],
)
def test_sku_facts_validation_names_the_field(args, field):
    with pytest.raises(ValueError, match=field):
        SkuFacts(*args)


@pytest.mark.parametrize("discount", [-1, 100.01, math.nan, "10"])
def test_price_change_validation_names_the_field(discount):
    with pytest.raises(ValueError, match="discount_pct"):
        PriceChange("SKU-1", discount)


@pytest.mark.parametrize(("fees", "field"), [({"fee_bp": -1, "fee_fixed_minor": 0}, "fee_bp"),
                                             ({"fee_bp": 10_000, "fee_fixed_minor": 0}, "fee_bp"),
                                             ({"fee_bp": 0, "fee_fixed_minor": 0.5}, "fee_fixed_minor")])
def test_fee_validation_names_the_field(fees, field):
    with pytest.raises(ValueError, match=field):
        check(GuardrailPolicy(0), {}, [], **fees)
