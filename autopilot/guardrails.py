"""Profit guardrails: the invariants a price change must keep (AUTOPILOT.md §3, §7 rule 1).

Pure and self-contained: the same `check` runs before approval, at activation and at every
decider tick, so it takes plain facts in and returns plain violations out — no I/O, no clock.

Money is always integer minor units. Percentages may arrive as int, float or Decimal; they are
turned into exact fractions (floats through their shortest repr, so 12.37 means 12.37) and every
comparison is exact, so a discount we suggest is one that `check` will accept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import MappingProxyType

BASIS_POINTS_PER_PERCENT = 100
HUNDRED_PERCENT_IN_BP = 100 * BASIS_POINTS_PER_PERCENT

RULE_UNKNOWN_SKU = "unknown_sku"
RULE_EXCLUDED_CATEGORY = "excluded_category"
RULE_MAX_DISCOUNT = "max_discount"
RULE_MARGIN_FLOOR = "margin_floor"
RULE_MIN_STOCK_UNITS = "min_stock_units"
RULE_MIN_DAYS_OF_COVER = "min_days_of_cover"


# --- validation helpers -------------------------------------------------------------------


def _is_number(value: object) -> bool:
    # bool is an int subclass; True as a percentage is a bug, not 1 %.
    return isinstance(value, int | float | Decimal | Fraction) and not isinstance(value, bool)


def _exact(value: int | float | Decimal | Fraction) -> Fraction:
    # Fraction(0.1) would be the binary approximation; the caller meant the decimal they wrote.
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def _require_pct(name: str, value: object, *, upper: int, upper_inclusive: bool) -> None:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_high = value > upper if upper_inclusive else value >= upper
    if value < 0 or too_high:
        bracket = "]" if upper_inclusive else ")"
        raise ValueError(f"{name} must be in [0, {upper}{bracket}, got {value!r}")


def _require_floor_pct(name: str, value: object) -> None:
    # A 100 % margin floor could only be met by free goods sold at no fee: always a typo.
    _require_pct(name, value, upper=100, upper_inclusive=False)


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _require_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _frozen_floor_map(name: str, floors: object) -> Mapping[str, float]:
    if not isinstance(floors, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(floors).__name__}")
    for key, floor in floors.items():
        _require_name(f"{name} key", key)
        _require_floor_pct(f"{name}[{key!r}]", floor)
    # A read-only copy: the policy is frozen, so the caller's dict must not change it later.
    return MappingProxyType(dict(floors))


# --- value objects ------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardrailPolicy:
    """A store's guardrails. Floors and limits are percentages (25 means 25 %)."""

    margin_floor_pct: float
    margin_floor_by_category: Mapping[str, float] = field(default_factory=dict, hash=False)
    margin_floor_by_sku: Mapping[str, float] = field(default_factory=dict, hash=False)
    max_discount_pct: float | None = None
    min_stock_units: int | None = None
    min_days_of_cover: float | None = None
    excluded_categories: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _require_floor_pct("margin_floor_pct", self.margin_floor_pct)
        object.__setattr__(
            self,
            "margin_floor_by_category",
            _frozen_floor_map("margin_floor_by_category", self.margin_floor_by_category),
        )
        object.__setattr__(
            self,
            "margin_floor_by_sku",
            _frozen_floor_map("margin_floor_by_sku", self.margin_floor_by_sku),
        )
        if self.max_discount_pct is not None:
            _require_pct("max_discount_pct", self.max_discount_pct, upper=100, upper_inclusive=True)
        if self.min_stock_units is not None:
            _require_int("min_stock_units", self.min_stock_units, minimum=0)
        if self.min_days_of_cover is not None:
            if not _is_number(self.min_days_of_cover) or not math.isfinite(self.min_days_of_cover):
                raise ValueError(f"min_days_of_cover must be a finite number, got {self.min_days_of_cover!r}")
            if self.min_days_of_cover < 0:
                raise ValueError(f"min_days_of_cover must be >= 0, got {self.min_days_of_cover!r}")
        # A bare string is iterable too; frozenset("shoes") would exclude the letters.
        if isinstance(self.excluded_categories, str) or not isinstance(self.excluded_categories, Iterable):
            raise ValueError("excluded_categories must be a set of category names")
        excluded = frozenset(self.excluded_categories)
        for category in excluded:
            _require_name("excluded_categories entry", category)
        object.__setattr__(self, "excluded_categories", excluded)

    def margin_floor_for(self, sku: str, category: str) -> float:
        """The floor that applies: SKU-specific, else category, else store-wide."""
        if sku in self.margin_floor_by_sku:
            return self.margin_floor_by_sku[sku]
        if category in self.margin_floor_by_category:
            return self.margin_floor_by_category[category]
        return self.margin_floor_pct


@dataclass(frozen=True)
class SkuFacts:
    """What the guardrails need to know about one SKU right now."""

    sku: str
    category: str
    price_minor: int
    unit_cost_minor: int
    stock_units: int
    daily_units_sold: float

    def __post_init__(self) -> None:
        _require_name("sku", self.sku)
        _require_name("category", self.category)
        _require_int("price_minor", self.price_minor, minimum=1)
        _require_int("unit_cost_minor", self.unit_cost_minor, minimum=0)
        _require_int("stock_units", self.stock_units, minimum=0)
        if not _is_number(self.daily_units_sold) or not math.isfinite(self.daily_units_sold):
            raise ValueError(f"daily_units_sold must be a finite number, got {self.daily_units_sold!r}")
        if self.daily_units_sold < 0:
            raise ValueError(f"daily_units_sold must be >= 0, got {self.daily_units_sold!r}")


@dataclass(frozen=True)
class PriceChange:
    """A proposed discount on one SKU, as a percentage of its price (12 means 12 %)."""

    sku: str
    discount_pct: float

    def __post_init__(self) -> None:
        _require_name("sku", self.sku)
        _require_pct("discount_pct", self.discount_pct, upper=100, upper_inclusive=True)


@dataclass(frozen=True)
class Violation:
    """Why a change is blocked, and — when one exists — the adjustment that would pass."""

    rule: str
    sku: str
    message: str
    actual: Decimal | int | float | None
    limit: Decimal | int | float | None
    adjustment: str | None = None
    max_passing_discount_pct: Decimal | None = None


# --- pure helpers -------------------------------------------------------------------------


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def discount_minor(price_minor: int, discount_pct: float | Decimal | Fraction) -> int:
    """The discount in minor units a till would apply: price × pct, rounded half up."""
    return _round_half_up(price_minor * _exact(discount_pct) / 100)


def payment_fee(net_price_minor: int, *, fee_bp: int, fee_fixed_minor: int) -> Fraction:
    """Estimated payment fee on the amount charged.

    Kept as an exact fraction rather than rounded to a minor unit: it is an estimate anyway, and
    rounding it would make the margin jump up and down as the discount grows, so "the largest
    discount that keeps the floor" would stop being well defined.
    """
    return Fraction(net_price_minor * fee_bp, HUNDRED_PERCENT_IN_BP) + fee_fixed_minor


def margin_pct(
    price_minor: int,
    discount_minor: int,
    unit_cost_minor: int,
    *,
    fee_bp: int,
    fee_fixed_minor: int,
) -> Fraction | None:
    """(price − discount − unit cost − fee) / (price − discount), in percent, exactly.

    None when nothing is charged: a margin on zero revenue is undefined and never meets a floor.
    """
    net = price_minor - discount_minor
    if net <= 0:
        return None
    fee = payment_fee(net, fee_bp=fee_bp, fee_fixed_minor=fee_fixed_minor)
    return (net - unit_cost_minor - fee) * 100 / Fraction(net)


def _meets_floor(
    price_minor: int, discount_bp: int, unit_cost_minor: int, floor: Fraction, fee_bp: int, fee_fixed_minor: int
) -> bool:
    discount = discount_minor(price_minor, Fraction(discount_bp, BASIS_POINTS_PER_PERCENT))
    margin = margin_pct(price_minor, discount, unit_cost_minor, fee_bp=fee_bp, fee_fixed_minor=fee_fixed_minor)
    return margin is not None and margin >= floor


def max_discount_for_floor(
    price_minor: int,
    unit_cost_minor: int,
    floor_pct: float | Decimal,
    *,
    fee_bp: int,
    fee_fixed_minor: int,
) -> Decimal | None:
    """The largest discount, to the basis point, that keeps the margin at or above the floor.

    None when even no discount meets the floor. The margin only falls as the discount grows
    (cost and fixed fee are spread over less revenue), so a binary search over basis points with
    the exact check finds the boundary: the answer passes and one basis point more fails.
    """
    floor = _exact(floor_pct)
    if not _meets_floor(price_minor, 0, unit_cost_minor, floor, fee_bp, fee_fixed_minor):
        return None
    passing_bp, failing_bp = 0, HUNDRED_PERCENT_IN_BP  # 100 % leaves no revenue: always fails
    while failing_bp - passing_bp > 1:
        middle_bp = (passing_bp + failing_bp) // 2
        if _meets_floor(price_minor, middle_bp, unit_cost_minor, floor, fee_bp, fee_fixed_minor):
            passing_bp = middle_bp
        else:
            failing_bp = middle_bp
    return (Decimal(passing_bp) / BASIS_POINTS_PER_PERCENT).quantize(Decimal("0.01"))


def days_of_cover(stock_units: int, daily_units_sold: float) -> float:
    """Days until the stock runs out at the average rate: infinite when nothing sells."""
    if stock_units == 0:
        return 0.0
    if daily_units_sold == 0:
        return math.inf
    return stock_units / daily_units_sold


# --- messages -----------------------------------------------------------------------------


def _format_pct(value: Fraction | Decimal | float, *, places: int, rounding: str = ROUND_HALF_UP) -> str:
    """'18', '12.5', '24.9': rounded to `places`, trailing zeros dropped, never exponents."""
    exact = _exact(value)
    as_decimal = Decimal(exact.numerator) / Decimal(exact.denominator)
    rounded = as_decimal.quantize(Decimal(1).scaleb(-places), rounding=rounding)
    text = format(rounded.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _format_days(days: float) -> str:
    return _format_pct(days, places=1, rounding=ROUND_FLOOR)


def _discount_adjustment(sku: str, passing_pct: Decimal | None, floor: float) -> str:
    if passing_pct is None:
        return f"no discount keeps {sku} at the {_format_pct(floor, places=2)} % floor; leave it out of the change"
    if passing_pct == 0:
        return f"leave {sku} undiscounted: any discount takes it below the {_format_pct(floor, places=2)} % floor"
    return f"a discount of at most {_format_pct(passing_pct, places=2)} % keeps {sku} at the {_format_pct(floor, places=2)} % floor"


# --- the rules ----------------------------------------------------------------------------


def _excluded_category_violation(policy: GuardrailPolicy, facts: SkuFacts) -> Violation | None:
    if facts.category not in policy.excluded_categories:
        return None
    return Violation(
        rule=RULE_EXCLUDED_CATEGORY,
        sku=facts.sku,
        message=f"{facts.sku} is in category {facts.category!r}, which is excluded from automation",
        actual=None,
        limit=None,
        adjustment=f"remove {facts.sku} from the change",
    )


def _stock_violations(policy: GuardrailPolicy, facts: SkuFacts) -> list[Violation]:
    violations = []
    if policy.min_stock_units is not None and facts.stock_units <= policy.min_stock_units:
        violations.append(
            Violation(
                rule=RULE_MIN_STOCK_UNITS,
                sku=facts.sku,
                message=(
                    f"{facts.sku} has {facts.stock_units} units in stock, "
                    f"at or below the {policy.min_stock_units}-unit threshold"
                ),
                actual=facts.stock_units,
                limit=policy.min_stock_units,
                adjustment=f"leave {facts.sku} unchanged until its stock is above {policy.min_stock_units} units",
            )
        )
    if policy.min_days_of_cover is not None:
        cover = days_of_cover(facts.stock_units, facts.daily_units_sold)
        if cover < policy.min_days_of_cover:
            violations.append(
                Violation(
                    rule=RULE_MIN_DAYS_OF_COVER,
                    sku=facts.sku,
                    message=(
                        f"{facts.sku} has {_format_days(cover)} days of cover, "
                        f"below the {_format_pct(policy.min_days_of_cover, places=2)}-day minimum"
                    ),
                    actual=cover,
                    limit=policy.min_days_of_cover,
                    adjustment=(
                        f"leave {facts.sku} unchanged until it has "
                        f"{_format_pct(policy.min_days_of_cover, places=2)} days of cover"
                    ),
                )
            )
    return violations


def _price_violations(
    policy: GuardrailPolicy, facts: SkuFacts, change: PriceChange, *, fee_bp: int, fee_fixed_minor: int
) -> list[Violation]:
    floor = policy.margin_floor_for(facts.sku, facts.category)
    floor_max = max_discount_for_floor(
        facts.price_minor, facts.unit_cost_minor, floor, fee_bp=fee_bp, fee_fixed_minor=fee_fixed_minor
    )
    # The suggestion must pass every price rule at once, not only the one it is attached to.
    passing = floor_max
    if passing is not None and policy.max_discount_pct is not None:
        passing = min(passing, Decimal(str(policy.max_discount_pct)))
    adjustment = _discount_adjustment(facts.sku, passing, floor)

    violations = []
    discount_pct = _exact(change.discount_pct)
    if policy.max_discount_pct is not None and discount_pct > _exact(policy.max_discount_pct):
        violations.append(
            Violation(
                rule=RULE_MAX_DISCOUNT,
                sku=facts.sku,
                message=(
                    f"a discount of {_format_pct(discount_pct, places=2)} % on {facts.sku} exceeds "
                    f"the {_format_pct(policy.max_discount_pct, places=2)} % maximum"
                ),
                actual=Decimal(str(change.discount_pct)),
                limit=Decimal(str(policy.max_discount_pct)),
                adjustment=adjustment,
                max_passing_discount_pct=passing,
            )
        )

    discount = discount_minor(facts.price_minor, discount_pct)
    margin = margin_pct(
        facts.price_minor, discount, facts.unit_cost_minor, fee_bp=fee_bp, fee_fixed_minor=fee_fixed_minor
    )
    if margin is None or margin < _exact(floor):
        if margin is None:
            shown_margin, actual = "nothing (no revenue left)", None
        else:
            # Rounded down so a margin just under the floor never reads as equal to it.
            shown_margin = f"{_format_pct(margin, places=1, rounding=ROUND_FLOOR)} %"
            actual = Decimal(_format_pct(margin, places=2, rounding=ROUND_FLOOR))
        violations.append(
            Violation(
                rule=RULE_MARGIN_FLOOR,
                sku=facts.sku,
                message=(
                    f"would reduce margin on {facts.sku} to {shown_margin}, "
                    f"below the {_format_pct(floor, places=2)} % floor"
                ),
                actual=actual,
                limit=Decimal(str(floor)),
                adjustment=adjustment,
                max_passing_discount_pct=passing,
            )
        )
    return violations


def check(
    policy: GuardrailPolicy,
    facts: Mapping[str, SkuFacts],
    changes: Iterable[PriceChange],
    *,
    fee_bp: int,
    fee_fixed_minor: int,
) -> list[Violation]:
    """Every guardrail a set of price changes breaks; an empty list means it passes.

    All violations are reported, not just the first, so the merchant sees the whole picture.
    """
    _require_int("fee_bp", fee_bp, minimum=0)
    if fee_bp >= HUNDRED_PERCENT_IN_BP:
        raise ValueError(f"fee_bp must be below {HUNDRED_PERCENT_IN_BP}, got {fee_bp!r}")
    _require_int("fee_fixed_minor", fee_fixed_minor, minimum=0)

    violations: list[Violation] = []
    for change in changes:
        sku_facts = facts.get(change.sku)
        if sku_facts is None:
            # Without facts nothing can be verified, and an unverified change is a blocked one.
            violations.append(
                Violation(
                    rule=RULE_UNKNOWN_SKU,
                    sku=change.sku,
                    message=f"no price, cost or stock known for {change.sku}; cannot verify the change",
                    actual=None,
                    limit=None,
                )
            )
            continue
        excluded = _excluded_category_violation(policy, sku_facts)
        if excluded is not None:
            violations.append(excluded)
        violations.extend(_stock_violations(policy, sku_facts))
        violations.extend(
            _price_violations(policy, sku_facts, change, fee_bp=fee_bp, fee_fixed_minor=fee_fixed_minor)
        )
    return violations
