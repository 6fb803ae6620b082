"""Calendar periods for the dashboard: today, this ISO week, this month — and the ones before.

Boundaries are midnights in the merchant's time zone, so a "day" can be 23 or
25 hours long around a DST change. A period runs from its start up to `now`
(inclusive). Its comparison window is the previous period up to the same point
in it (`same_point`: yesterday up to this time of day, last week up to this
weekday and time, last month up to the same elapsed wall-clock time, or all of
it when it is shorter), or the whole previous period (`full`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidValue

PeriodName = Literal["today", "this_week", "this_month"]
Comparison = Literal["same_point", "full"]
PERIODS: tuple[PeriodName, ...] = ("today", "this_week", "this_month")
_RESOLUTION = timedelta(microseconds=1)  # read models store microseconds: "up to now inclusive" ends 1 µs later


@dataclass(frozen=True)
class Window:
    """A half-open span of time [start, end), tz-aware."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Period:
    name: PeriodName
    current: Window
    previous: Window


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidValue("tz", f"unknown time zone {name!r}", code="query.unknown_time_zone") from None


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def _starts(name: PeriodName, today: date) -> tuple[date, date]:
    """First day of the period containing `today`, and of the period before it."""
    if name == "today":
        return today, today - timedelta(days=1)
    if name == "this_week":
        monday = today - timedelta(days=today.weekday())  # ISO weeks start on Monday
        return monday, monday - timedelta(days=7)
    first = today.replace(day=1)
    return first, (first - timedelta(days=1)).replace(day=1)


def period(name: PeriodName, now: datetime, tz: ZoneInfo, compare: Comparison = "same_point") -> Period:
    local_now = now.astimezone(tz)
    start_day, previous_day = _starts(name, local_now.date())
    start, previous_start = _midnight(start_day, tz), _midnight(previous_day, tz)
    if compare == "full":
        previous_end = start
    else:
        # Same tzinfo on both sides: Python subtracts and adds wall-clock time, which is what
        # "the same time yesterday" means across a DST change.
        previous_end = min(previous_start + (local_now - start) + _RESOLUTION, start)
    utc = timezone.utc
    return Period(
        name=name,
        current=Window(start.astimezone(utc), (local_now + _RESOLUTION).astimezone(utc)),
        previous=Window(previous_start.astimezone(utc), previous_end.astimezone(utc)),
    )
