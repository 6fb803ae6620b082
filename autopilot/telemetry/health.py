"""Event-flow health of a store: what arrived minute by minute, and where it went quiet when it should not.

A *delivery gap* is a run of minutes without one accepted event where the store's own history
says silence is improbable. The expectation for a minute is the store's mean rate in the same
UTC hour of day over the previous days (up to BASELINE_DAYS whole days before the window). Under
a Poisson model a silent run with Σ expected events = λ happens by chance with probability e^−λ,
so a run is a gap when λ ≥ ln(GAP_ODDS): one false alarm in GAP_ODDS silent runs. A busy store's
gap is one quiet minute; a store with one event a minute needs about seven; a store without
history has no expectation and therefore no gaps. The minute still in progress is never a gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autopilot.telemetry.log import US_PER_MINUTE, FlowMinute, TelemetryLog

BASELINE_DAYS = 7
GAP_ODDS = 1000
GAP_MIN_EXPECTED = math.log(GAP_ODDS)  # ≈ 6.9 events
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class MinuteHealth:
    minute: int  # minutes since the Unix epoch, UTC
    accepted: int
    duplicates: int
    rejected: int
    refused_batches: int
    expected: float | None  # accepted events the baseline expects in this minute


@dataclass(frozen=True)
class Gap:
    from_minute: int
    to_minute: int  # exclusive
    expected_events: float  # what the baseline expected over the gap

    @property
    def minutes(self) -> int:
        return self.to_minute - self.from_minute


@dataclass(frozen=True)
class EventFlow:
    store_id: str
    from_minute: int
    to_minute: int  # exclusive; the last minute of the window is the one in progress
    accepted: int
    duplicates: int
    rejected: int
    refused_batches: int
    baseline_days: int
    last_accepted_at_us: int | None
    per_minute: list[MinuteHealth]
    gaps: list[Gap]

    @property
    def minutes(self) -> int:
        return self.to_minute - self.from_minute

    @property
    def events_per_minute(self) -> float:
        return self.accepted / self.minutes


def baseline_days(first_minute: int | None, from_minute: int) -> int:
    """Whole days of history before the window, at most BASELINE_DAYS."""
    if first_minute is None or first_minute >= from_minute:
        return 0
    return min(BASELINE_DAYS, (from_minute - first_minute) // MINUTES_PER_DAY)


def expected_rates(accepted_by_hour: dict[int, int], days: int) -> dict[int, float] | None:
    """Expected accepted events per minute for each UTC hour of day, or None without history."""
    if days <= 0:
        return None
    return {hour: accepted_by_hour.get(hour, 0) / (days * 60) for hour in range(24)}


def find_gaps(per_minute: list[MinuteHealth], complete_before: int) -> list[Gap]:
    """Silent runs of complete minutes whose expected events reach GAP_MIN_EXPECTED."""
    gaps: list[Gap] = []
    run_start, run_expected = None, 0.0

    def close_run(end: int) -> None:
        if run_start is not None and run_expected >= GAP_MIN_EXPECTED:
            gaps.append(Gap(run_start, end, round(run_expected, 2)))

    for m in per_minute:
        silent = m.minute < complete_before and m.accepted == 0 and m.expected is not None
        if silent:
            if run_start is None:
                run_start, run_expected = m.minute, 0.0
            run_expected += m.expected
        else:
            close_run(m.minute)
            run_start = None
    if per_minute:
        close_run(per_minute[-1].minute + 1)
    return gaps


def summarise(store_id: str, flows: list[FlowMinute], *, from_minute: int, to_minute: int,
              rates: dict[int, float] | None, days: int, last_accepted_at_us: int | None) -> EventFlow:
    """The report over [from_minute, to_minute): every minute (silent ones too), totals and gaps."""
    by_minute = {f.minute: f for f in flows}
    per_minute = []
    for minute in range(from_minute, to_minute):
        f = by_minute.get(minute)
        expected = rates[(minute // 60) % 24] if rates is not None else None
        per_minute.append(MinuteHealth(
            minute, f.accepted if f else 0, f.duplicates if f else 0, f.rejected if f else 0,
            f.refused_batches if f else 0, None if expected is None else round(expected, 3),
        ))
    return EventFlow(
        store_id=store_id, from_minute=from_minute, to_minute=to_minute,
        accepted=sum(f.accepted for f in flows), duplicates=sum(f.duplicates for f in flows),
        rejected=sum(f.rejected for f in flows), refused_batches=sum(f.refused_batches for f in flows),
        baseline_days=days, last_accepted_at_us=last_accepted_at_us, per_minute=per_minute,
        gaps=find_gaps(per_minute, complete_before=to_minute - 1),
    )


def read_event_flow(log: TelemetryLog, store_id: str, *, minutes: int, now_us: int) -> EventFlow:
    """The last `minutes` minutes of the store's event flow, the current minute included."""
    store_id = str(store_id)
    to_minute = now_us // US_PER_MINUTE + 1
    from_minute = to_minute - minutes
    totals = log.totals(store_id)
    first_minute = totals[0].first_minute if totals else None
    days = baseline_days(first_minute, from_minute)
    rates = None
    if days:
        rates = expected_rates(
            log.accepted_by_hour_of_day(store_id, from_minute - days * MINUTES_PER_DAY, from_minute), days)
    return summarise(store_id, log.flow(store_id, from_minute, to_minute), from_minute=from_minute,
                     to_minute=to_minute, rates=rates, days=days,
                     last_accepted_at_us=totals[0].last_accepted_at_us if totals else None)
