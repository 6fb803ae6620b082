"""Conservative attribution of gross profit to proven ChangeSets (AUTOPILOT.md §8). Pure: no I/O, no clock.

For each PROVEN or PERMANENT ChangeSet the attributed uplift over a period is

    lower bound of the relative lift × |baseline gross profit per visitor| × treated visitors

counted only from the moment the ChangeSet was proven (the experiment's own treated traffic before the
proof is not credited), and rounded DOWN to whole minor units. A missing or non-positive lower bound
counts 0: a ChangeSet whose effect is not surely positive is credited nothing, and never negative.
The baseline is the control arm's mean gross profit per visitor; the lift is relative to its absolute
value (Δ = (m_T − m_C)/|m_C|, §6), so Δ·|m_C| is the uplift per visitor in minor units.

The global holdout (visitors who never receive any ChangeSet) gives an independent estimate of the
total effect, (GPV outside the holdout − GPV of the holdout) × visitors outside the holdout; a
conservative attributed sum above it is flagged ("attributed exceeds holdout estimate"): the per-ChangeSet
effects may not add up (interactions, novelty decay) or a lower bound is too optimistic.

Money is integer minor units plus an ISO 4217 code, as everywhere; currencies are never mixed: each
total is per currency, and a series or a cross-check in one currency rejects inputs in another
(ValueError). Arithmetic is exact (fractions of the float inputs), so rounding down happens once, at
the end, and a longer period never attributes less than a shorter one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from fractions import Fraction
from types import MappingProxyType
from typing import Any

# the ChangeSet states of domain/changeset.py (not imported: this module stays free of the domain package)
PROVEN = "PROVEN"
PERMANENT = "PERMANENT"
ATTRIBUTABLE_STATES = frozenset({PROVEN, PERMANENT})

EXCEEDS_HOLDOUT = "attributed exceeds holdout estimate"
EXCEEDS_HOLDOUT_UPPER = "attributed exceeds holdout upper bound"

# why a ChangeSet got what it got
COUNTED = "counted"
NOT_PROVEN = "not_proven"  # state is not PROVEN/PERMANENT, or there is no proven_at
NO_LOWER_BOUND = "no_lower_bound"
LOWER_BOUND_NOT_POSITIVE = "lower_bound_not_positive"
OUTSIDE_PERIOD = "outside_period"  # proven after the period ended

_SECONDS_PER_DAY = 86_400
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _check_currency(code: str) -> str:
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise ValueError(f"currency must be an ISO 4217 code like 'EUR', got {code!r}")
    return code


def _check_aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _check_finite(name: str, value: float, *, non_negative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if non_negative and value < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return value


@dataclass(frozen=True)
class ChangeSetResult:
    """What the attribution needs to know about one ChangeSet (the worker gathers it)."""

    changeset_id: str
    state: str
    proven_at: datetime | None  # aware; None if never proven
    lift_lower_bound: float | None  # relative, e.g. 0.03 = +3 %; None if unknown
    baseline_gpv_minor: float  # control arm mean gross profit per visitor, in minor units
    treated_visitors_per_day: float  # visitors receiving the change per day since it was proven
    currency: str
    lift_point_estimate: float | None = None  # relative; for reporting and the upper-bound check

    def __post_init__(self) -> None:
        if not self.changeset_id:
            raise ValueError("changeset_id must be non-empty")
        _check_currency(self.currency)
        if self.proven_at is not None:
            _check_aware("proven_at", self.proven_at)
        if self.lift_lower_bound is not None:
            _check_finite("lift_lower_bound", self.lift_lower_bound)
        if self.lift_point_estimate is not None:
            _check_finite("lift_point_estimate", self.lift_point_estimate)
        _check_finite("baseline_gpv_minor", self.baseline_gpv_minor)
        _check_finite("treated_visitors_per_day", self.treated_visitors_per_day, non_negative=True)


@dataclass(frozen=True)
class Attribution:
    changeset_id: str
    currency: str
    uplift_minor: int  # conservative, ≥ 0
    point_estimate_minor: int | None  # the same with the point estimate of the lift (may be negative)
    days: float  # days of the period during which the ChangeSet was proven
    reason: str  # COUNTED, NOT_PROVEN, NO_LOWER_BOUND, LOWER_BOUND_NOT_POSITIVE or OUTSIDE_PERIOD


@dataclass(frozen=True)
class AttributionReport:
    period_start: datetime
    period_end: datetime
    items: tuple[Attribution, ...]
    totals: Mapping[str, int]  # currency → attributed minor units

    def total(self, currency: str) -> int:
        return self.totals.get(_check_currency(currency), 0)

    def as_numbers(self) -> dict[str, Any]:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "totals": [{"amount": amount, "currency": code} for code, amount in sorted(self.totals.items())],
            "changesets": [
                {
                    "changeset_id": item.changeset_id,
                    "uplift": {"amount": item.uplift_minor, "currency": item.currency},
                    "point_estimate": None
                    if item.point_estimate_minor is None
                    else {"amount": item.point_estimate_minor, "currency": item.currency},
                    "days": item.days,
                    "reason": item.reason,
                }
                for item in self.items
            ],
        }


def _floor(value: Fraction) -> int:
    return math.floor(value)


def _attribute(result: ChangeSetResult, start: datetime, end: datetime) -> Attribution:
    def item(uplift: int, point: int | None, days: Fraction, reason: str) -> Attribution:
        return Attribution(result.changeset_id, result.currency, uplift, point, float(days), reason)

    if result.state not in ATTRIBUTABLE_STATES or result.proven_at is None:
        return item(0, None, Fraction(0), NOT_PROVEN)
    active_from = max(start, result.proven_at)
    if active_from >= end:
        return item(0, None, Fraction(0), OUTSIDE_PERIOD)
    elapsed = end - active_from
    days = Fraction(elapsed.days) + Fraction(elapsed.seconds, _SECONDS_PER_DAY) + Fraction(
        elapsed.microseconds, _SECONDS_PER_DAY * 1_000_000
    )
    # uplift per visitor per unit of lift, times treated visitors: exact, in minor units
    exposure = Fraction(abs(result.baseline_gpv_minor)) * Fraction(result.treated_visitors_per_day) * days
    point = None
    if result.lift_point_estimate is not None:
        point = _floor(Fraction(result.lift_point_estimate) * exposure)
    if result.lift_lower_bound is None:
        return item(0, point, days, NO_LOWER_BOUND)
    if result.lift_lower_bound <= 0:
        return item(0, point, days, LOWER_BOUND_NOT_POSITIVE)
    return item(_floor(Fraction(result.lift_lower_bound) * exposure), point, days, COUNTED)


def attributed_uplift(
    results: Iterable[ChangeSetResult],
    period_start: datetime,
    period_end: datetime,
    *,
    currency: str | None = None,
) -> AttributionReport:
    """Per-ChangeSet conservative uplift over [period_start, period_end) and the total per currency.

    With `currency`, every result must be in that currency (ValueError otherwise). A ChangeSet id may
    appear once only.
    """
    _check_aware("period_start", period_start)
    _check_aware("period_end", period_end)
    if period_end < period_start:
        raise ValueError(f"period_end {period_end.isoformat()} is before period_start {period_start.isoformat()}")
    if currency is not None:
        _check_currency(currency)
    items: list[Attribution] = []
    totals: dict[str, int] = {}
    seen: set[str] = set()
    for result in results:
        if currency is not None and result.currency != currency:
            raise ValueError(
                f"ChangeSet {result.changeset_id} is in {result.currency}, not {currency}: currencies never mix"
            )
        if result.changeset_id in seen:
            raise ValueError(f"ChangeSet {result.changeset_id} appears twice")
        seen.add(result.changeset_id)
        attributed = _attribute(result, period_start, period_end)
        items.append(attributed)
        totals[result.currency] = totals.get(result.currency, 0) + attributed.uplift_minor
    return AttributionReport(period_start, period_end, tuple(items), MappingProxyType(dict(sorted(totals.items()))))


@dataclass(frozen=True)
class DailyImprovement:
    day: date
    cumulative_minor: int  # attributed from the start of the first day to the end of this day
    daily_minor: int  # the increase over the previous day
    currency: str


def cumulative_improvement(
    results: Sequence[ChangeSetResult], days: Sequence[date], *, tz: tzinfo = timezone.utc
) -> tuple[DailyImprovement, ...]:
    """A daily series of cumulative attributed gross profit over consecutive calendar `days` (in `tz`).

    All results must share one currency (a series has one unit). Each point is
    `attributed_uplift(results, start of days[0], end of that day)`, so the series never decreases and
    its last point equals the report for the whole range.
    """
    results = list(results)
    days = list(days)
    if not days:
        return ()
    for previous, current in zip(days, days[1:]):
        if current - previous != timedelta(days=1):
            raise ValueError(f"days must be consecutive: {previous.isoformat()} is followed by {current.isoformat()}")
    currencies = {result.currency for result in results}
    if len(currencies) > 1:
        raise ValueError(f"a cumulative series has one currency, got {sorted(currencies)}: currencies never mix")
    code = currencies.pop() if currencies else None
    start = datetime.combine(days[0], time.min, tzinfo=tz)
    series: list[DailyImprovement] = []
    previous_total = 0
    for day in days:
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
        total = attributed_uplift(results, start, end).total(code) if code else 0
        series.append(DailyImprovement(day, total, total - previous_total, code or ""))
        previous_total = total
    return tuple(series)


@dataclass(frozen=True)
class HoldoutCheck:
    currency: str
    implied_minor: int  # (treated GPV − holdout GPV) × visitors, rounded down
    implied_upper_minor: int | None  # with difference_se: (difference + z·se) × visitors, rounded down
    attributed_minor: int
    exceeds: bool  # the attributed sum is above the holdout's point estimate
    flags: tuple[str, ...]

    def as_numbers(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "implied": self.implied_minor,
            "implied_upper": self.implied_upper_minor,
            "attributed": self.attributed_minor,
            "exceeds": self.exceeds,
            "flags": list(self.flags),
        }


def holdout_cross_check(
    holdout_gpv: float,
    treated_gpv: float,
    visitors: int,
    *,
    attributed: AttributionReport | int,
    currency: str,
    difference_se: float | None = None,
    z: float = 1.96,
) -> HoldoutCheck:
    """The total effect implied by the global holdout, against the attributed total.

    `holdout_gpv` and `treated_gpv` are mean gross profit per visitor (minor units, `currency`) of the
    global holdout and of the visitors outside it over the same period; `visitors` is the number of
    visitors outside the holdout. `attributed` is the report of `attributed_uplift` (it must hold no other
    currency) or its total in minor units. With `difference_se` (standard error of the GPV difference per
    visitor) the check also compares against the upper confidence bound, which is the flag worth acting on:
    exceeding the point estimate alone happens by chance when the holdout is small.
    """
    _check_currency(currency)
    _check_finite("holdout_gpv", holdout_gpv)
    _check_finite("treated_gpv", treated_gpv)
    if isinstance(visitors, bool) or not isinstance(visitors, int) or visitors < 0:
        raise ValueError(f"visitors must be a non-negative integer, got {visitors!r}")
    if isinstance(attributed, AttributionReport):
        others = sorted(code for code in attributed.totals if code != currency)
        if others:
            raise ValueError(f"the attribution holds {others} besides {currency}: currencies never mix")
        attributed_minor = attributed.total(currency)
    elif isinstance(attributed, int) and not isinstance(attributed, bool):
        attributed_minor = attributed
    else:
        raise ValueError(f"attributed must be an AttributionReport or integer minor units, got {attributed!r}")

    implied = (Fraction(treated_gpv) - Fraction(holdout_gpv)) * visitors
    flags: list[str] = []
    exceeds = attributed_minor > implied
    if exceeds:
        flags.append(EXCEEDS_HOLDOUT)
    upper_minor = None
    if difference_se is not None:
        _check_finite("difference_se", difference_se, non_negative=True)
        _check_finite("z", z, non_negative=True)
        upper = implied + Fraction(z) * Fraction(difference_se) * visitors
        upper_minor = _floor(upper)
        if attributed_minor > upper:
            flags.append(EXCEEDS_HOLDOUT_UPPER)
    return HoldoutCheck(currency, _floor(implied), upper_minor, attributed_minor, exceeds, tuple(flags))
