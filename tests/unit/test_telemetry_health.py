"""Event-flow health: expectations from the store's own history, and which silences are gaps."""

from __future__ import annotations

import math

from autopilot.telemetry.health import (
    GAP_MIN_EXPECTED, MINUTES_PER_DAY, baseline_days, expected_rates, summarise,
)
from autopilot.telemetry.log import FlowMinute

DAY0 = 29_900_160  # a UTC midnight, in minutes since the epoch
assert DAY0 % MINUTES_PER_DAY == 0


def flows(counts: dict[int, int], start: int) -> list[FlowMinute]:
    return [FlowMinute(start + m, n, 0, 0, 0) for m, n in counts.items()]


def test_silence_is_improbable_at_about_seven_expected_events():
    assert math.isclose(math.exp(-GAP_MIN_EXPECTED), 0.001) and 6.9 < GAP_MIN_EXPECTED < 6.91


def test_history_counts_in_whole_days_up_to_a_week():
    assert baseline_days(None, DAY0) == 0
    assert baseline_days(DAY0, DAY0) == 0
    assert baseline_days(DAY0 - MINUTES_PER_DAY + 1, DAY0) == 0
    assert baseline_days(DAY0 - 2 * MINUTES_PER_DAY - 5, DAY0) == 2
    assert baseline_days(DAY0 - 30 * MINUTES_PER_DAY, DAY0) == 7


def test_expected_rate_is_the_mean_per_minute_of_that_hour_over_the_days():
    rates = expected_rates({9: 2 * 60 * 12, 10: 60}, days=2)
    assert rates[9] == 12 and rates[10] == 0.5 and rates[3] == 0
    assert expected_rates({9: 100}, days=0) is None


def test_a_quiet_minute_in_a_busy_hour_is_a_gap_and_in_a_quiet_hour_it_is_not():
    start = DAY0 + 9 * 60 + 50  # 09:50 … 10:09, the last minute in progress
    rates = {h: 0.0 for h in range(24)} | {9: 12.0, 10: 0.5}
    counts = {m: 12 for m in range(20)} | {3: 0, 14: 0, 15: 0}  # 09:53 silent; 10:04–10:05 silent
    report = summarise("s", flows(counts, start), from_minute=start, to_minute=start + 20, rates=rates, days=7,
                       last_accepted_at_us=None)
    assert [(g.from_minute - start, g.minutes, g.expected_events) for g in report.gaps] == [(3, 1, 12.0)]
    assert report.accepted == 12 * 17 and report.minutes == 20
    assert [m.expected for m in report.per_minute][:2] == [12.0, 12.0] and report.per_minute[-1].expected == 0.5


def test_a_long_silence_of_a_small_store_is_a_gap():
    start = DAY0 + 9 * 60
    rates = {h: 0.5 for h in range(24)}
    counts = {0: 1, 30: 1}  # silent 01…29: 29 minutes × 0.5 expected; 31…38: only 8 × 0.5
    report = summarise("s", flows(counts, start), from_minute=start, to_minute=start + 40, rates=rates, days=3,
                       last_accepted_at_us=None)
    assert [(g.from_minute - start, g.to_minute - start, g.expected_events) for g in report.gaps] == [(1, 30, 14.5)]


def test_the_minute_in_progress_is_never_a_gap_and_without_history_nothing_is():
    start = DAY0 + 9 * 60
    busy = {h: 100.0 for h in range(24)}
    report = summarise("s", flows({m: 100 for m in range(9)}, start), from_minute=start, to_minute=start + 10,
                       rates=busy, days=1, last_accepted_at_us=None)
    assert report.gaps == []  # minute 9 (in progress) is silent so far
    unknown = summarise("s", [], from_minute=start, to_minute=start + 10, rates=None, days=0, last_accepted_at_us=None)
    assert unknown.gaps == [] and all(m.expected is None for m in unknown.per_minute)
    assert len(unknown.per_minute) == 10 and unknown.events_per_minute == 0
