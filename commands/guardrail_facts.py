"""The facts the profit guardrails are checked against, read from the write side.

A ChangeSet is checked when it is approved (and activated, in the same unit of work) and at
every decider tick. Price, unit cost and categories come from the Product, stock from the
StockItem: both always current, so nobody approves against a stale read model. Sales velocity
(for days of cover) is not on the write side: the caller passes it (the API reads it from the
dashboard read model), and a SKU without it counts as not selling — the conservative side for
every guardrail but days of cover, which then sees infinite cover and only the stock threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from autopilot.guardrails import GuardrailPolicy, PriceChange, SkuFacts, Violation, check
from domain.changeset_contract import ChangeSetContract
from domain.errors import InvalidValue
from domain.ids import stock_item_id
from domain.product import Product
from domain.stock import StockItem

UNCATEGORISED = "uncategorised"
DEFAULT_FEE_BP = 140  # the warehouse's payment-fee estimate (autopilot/warehouse/commerce.py): 1.4 % + 25
DEFAULT_FEE_FIXED_MINOR = 25


def policy_from_settings(settings: dict | None, contract: ChangeSetContract) -> GuardrailPolicy:
    """The store's policy, tightened by the ChangeSet's own guardrails (the stricter floor and threshold win)."""
    settings = dict(settings or {})
    own = contract.guardrails
    floor = max(float(settings.get("margin_floor_pct", 0)), float(own.profit_floor_min_margin_pct))
    store_stock = settings.get("min_stock_units")
    stock = own.stock_threshold if store_stock is None else max(int(store_stock), own.stock_threshold)
    return GuardrailPolicy(
        margin_floor_pct=floor,
        margin_floor_by_category={k: max(float(v), floor) for k, v in settings.get("margin_floor_by_category", {}).items()},
        margin_floor_by_sku={k: max(float(v), floor) for k, v in settings.get("margin_floor_by_sku", {}).items()},
        max_discount_pct=settings.get("max_discount_pct"),
        min_stock_units=stock or None,
        min_days_of_cover=settings.get("min_days_of_cover"),
        excluded_categories=frozenset(settings.get("excluded_categories", ())),
    )


def fees(settings: dict | None) -> tuple[int, int]:
    settings = settings or {}
    return (int(settings.get("payment_fee_bp", DEFAULT_FEE_BP)),
            int(settings.get("payment_fee_fixed_minor", DEFAULT_FEE_FIXED_MINOR)))


def price_changes(contract: ChangeSetContract) -> list[PriceChange]:
    """The discounts a ChangeSet applies: `implementation.changes` entries with a `sku` and a `discount_pct`."""
    changes = []
    for index, change in enumerate(contract.action_plan.implementation.changes):
        if "discount_pct" not in change:
            continue
        try:
            changes.append(PriceChange(sku=change.get("sku"), discount_pct=change["discount_pct"]))
        except ValueError as exc:
            raise InvalidValue(f"contract.action_plan.implementation.changes.{index}", str(exc),
                               code="changeset.invalid_contract") from None
    return changes


def sku_facts(get, store_id: UUID, skus: Iterable[str], daily_units_sold: Mapping[str, float]) -> dict[str, SkuFacts]:
    """Facts per SKU, through `get(cls, id) -> aggregate | None`; an unknown SKU is left out (and so blocked)."""
    facts = {}
    for sku in skus:
        item = get(StockItem, stock_item_id(store_id, sku))
        if item is None:
            continue
        product = get(Product, item.product_id)
        variant = product.variants.get(sku) if product is not None else None
        if variant is None:
            continue
        facts[sku] = SkuFacts(
            sku=sku, category=(product.categories or [UNCATEGORISED])[0], price_minor=variant["price"],
            unit_cost_minor=variant["unit_cost"], stock_units=max(item.available, 0),
            daily_units_sold=float(daily_units_sold.get(sku, 0.0)),
        )
    return facts


def finder(app, store_id: UUID):
    """`find(cls, id)` over the event store for one store: None when absent, of another type or store."""
    def find(cls, aggregate_id: UUID):
        try:
            aggregate = app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls) or getattr(aggregate, "store_id", None) != store_id:
            return None
        return aggregate
    return find


def violations_for(get, store_id: UUID, settings: dict | None, contract: ChangeSetContract,
                   daily_units_sold: Mapping[str, float]) -> list[Violation]:
    changes = price_changes(contract)
    if not changes:
        return []
    facts = sku_facts(get, store_id, {c.sku for c in changes}, daily_units_sold)
    fee_bp, fee_fixed = fees(settings)
    return check(policy_from_settings(settings, contract), facts, changes, fee_bp=fee_bp, fee_fixed_minor=fee_fixed)


def _plain(value):
    value = float(value) if isinstance(value, Decimal) else value
    # infinite days of cover (a SKU that does not sell) is not JSON: no number to show
    return None if isinstance(value, float) and not math.isfinite(value) else value


def as_problem(violation: Violation) -> dict:
    """A violation as a problem+json field error, with the adjustment that would pass."""
    return {
        "field": "guardrails", "code": f"guardrail.{violation.rule}", "reason": violation.message,
        "sku": violation.sku, "actual": _plain(violation.actual), "limit": _plain(violation.limit),
        "adjustment": violation.adjustment, "max_passing_discount_pct": _plain(violation.max_passing_discount_pct),
    }
