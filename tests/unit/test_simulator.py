"""The traffic simulator: deterministic, the funnel rates it was given, problems where they were planted,
events the ingestion accepts, and a warehouse load that says the same as the events."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import duckdb
import numpy as np
import pytest

from autopilot.simulator import (
    AcceleratedClock, FixedClock, PlantedProblem, Simulation, StoreProfile, load_into,
)
from autopilot.simulator.profile import TRANSITION_STEPS
from autopilot.telemetry.schemas import EVENT, check_events, traffic_source
from autopilot.warehouse.schema import FUNNEL_STEPS

END = date(2026, 3, 31)


def profile(**overrides) -> StoreProfile:
    return StoreProfile(str(uuid4()), **overrides)


def test_the_same_seed_gives_the_same_day_and_another_seed_another():
    store = profile()
    one, two = Simulation(store, seed=1, end=END, days=10), Simulation(store, seed=1, end=END, days=10)
    other = Simulation(store, seed=2, end=END, days=10)
    day = END - timedelta(days=3)
    a, b, c = one.visitors(day), two.visitors(day), other.visitors(day)
    assert list(a.visitor_id) == list(b.visitor_id) and (a.max_step == b.max_step).all()
    assert len(a) != len(c) or (a.max_step != c.max_step).any()
    # A day can be produced alone, in any order: the same as within a full pass.
    assert (Simulation(store, seed=1, end=END, days=10).visitors(day).max_step == a.max_step).all()


def test_step_conversions_are_the_ones_configured():
    rates = {"visit": 0.6, "product_view": 0.3, "add_to_cart": 0.5, "checkout_start": 0.8, "shipping": 0.7,
             "payment": 0.9}
    store = profile(visitors_per_day=20_000, rates=rates, effects=(), daily_rate_cv=0.0)
    day = Simulation(store, seed=5, end=END, days=1).visitors(END)
    reached = np.array([(day.max_step >= k).sum() for k in range(len(FUNNEL_STEPS))])
    assert (np.diff(reached) <= 0).all()
    for k, step in enumerate(TRANSITION_STEPS):
        observed = reached[k + 1] / reached[k]
        standard_error = np.sqrt(rates[step] * (1 - rates[step]) / reached[k])
        assert abs(observed - rates[step]) < 4 * standard_error, step


def test_a_planted_problem_hits_its_segment_and_step_from_its_start_only():
    start = END - timedelta(days=2)
    problem = PlantedProblem("shipping", {"device": "mobile", "country": "FR"}, 0.3, start)
    store = profile(visitors_per_day=20_000, problems=(problem,), daily_rate_cv=0.0,
                    rates={**StoreProfile("x").rates, "add_to_cart": 0.9, "product_view": 0.5})
    simulation = Simulation(store, seed=9, end=END, days=6)

    def shipping_rate(day, segment):
        visitors = simulation.visitors(day)
        rows = segment(visitors)
        return (visitors.max_step[rows] >= 5).sum() / (visitors.max_step[rows] >= 4).sum()

    def mobile_fr(v):
        return (v.device == "mobile") & (v.country == "FR")

    def others(v):
        return ~mobile_fr(v)

    before, after = shipping_rate(start - timedelta(days=1), mobile_fr), shipping_rate(start, mobile_fr)
    assert before == pytest.approx(0.82, abs=0.06) and after == pytest.approx(0.82 * 0.3, abs=0.06)
    assert shipping_rate(start, others) == pytest.approx(0.82, abs=0.03)
    with pytest.raises(ValueError):
        PlantedProblem("complete", {}, 0.5, start)
    with pytest.raises(ValueError):
        PlantedProblem("shipping", {"browser": "x"}, 0.5, start)


def test_returning_visitors_were_seen_before_with_the_same_device_and_country():
    simulation = Simulation(profile(visitors_per_day=800), seed=3, end=END, days=12)
    seen: dict[str, tuple[str, str]] = {}
    shares = []
    for day in simulation.dates():
        visitors = simulation.visitors(day)
        assert len(set(visitors.visitor_id)) == len(visitors)
        for vid, device, country, returning in zip(visitors.visitor_id, visitors.device, visitors.country,
                                                   visitors.is_returning):
            assert returning == (vid in seen)
            if returning:
                assert seen[vid] == (device, country)
            seen.setdefault(vid, (device, country))
        shares.append(visitors.is_returning.mean())
    assert shares[0] == 0.0  # nobody can come back on the first simulated day
    assert np.mean(shares[3:]) == pytest.approx(0.30, abs=0.04)


def test_events_are_accepted_by_the_ingestion_and_tell_the_same_funnel():
    store = profile(visitors_per_day=300)
    simulation = Simulation(store, seed=4, end=END, days=2)
    events = list(simulation.events())
    moments = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert moments == sorted(moments)
    received = int((moments[-1] - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 1_000_000)
    checked = check_events(events, store_id=UUID(store.store_id), received_at_us=received)
    assert checked.rejected == [] and len(checked.rows) == len(events)
    kinds = Counter(e["type"] if e["type"] != "checkout_step" else e["step"] for e in events)
    names = ("page_view", "product_view", "add_to_cart", "checkout_start", "shipping", "payment", "checkout_complete")
    expected, orders, sources = Counter(), set(), {}
    for day in simulation.dates():
        visitors = simulation.visitors(day)
        for k, name in enumerate(names):
            expected[name] += int((visitors.max_step >= k).sum())
        orders |= set(simulation.orders(day)["order_id"])
        sources.update({(day.isoformat(), v): s for v, s in zip(visitors.visitor_id, visitors.traffic_source)})
    assert kinds == expected
    assert {e["order_id"] for e in events if e["type"] == "checkout_complete"} == orders
    for event in events:  # the source the ingestion derives is the one simulated
        if event["type"] == "page_view":
            derived = traffic_source(EVENT.validate_python(event).__dict__)
            assert derived == sources[(event["occurred_at"][:10], event["visitor_id"])]


def test_events_between_two_moments_on_an_accelerated_clock():
    store = profile(visitors_per_day=200)
    ticks = iter([0.0, 0.0, 60.0])
    clock = AcceleratedClock(datetime(2026, 4, 1, tzinfo=timezone.utc), factor=1440, real=lambda: next(ticks))
    assert clock.now() == datetime(2026, 4, 1, tzinfo=timezone.utc)
    assert clock.now() == datetime(2026, 4, 2, tzinfo=timezone.utc)  # a real minute later: a simulated day
    simulation = Simulation(store, seed=1, end=date(2026, 4, 1), days=2)
    since = datetime(2026, 4, 1, 6, tzinfo=timezone.utc)
    window = list(simulation.events(since, since + timedelta(hours=2)))
    assert window and all(since.isoformat() <= e["occurred_at"] < (since + timedelta(hours=2)).isoformat()
                          for e in window)
    fixed = FixedClock(datetime(2026, 4, 2, 1, tzinfo=timezone.utc))
    assert Simulation.up_to(store, fixed, seed=1, days=3).end == date(2026, 4, 1)
    fixed.advance(timedelta(days=1))
    assert fixed.now().date() == date(2026, 4, 3)
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 4, 1))


def test_load_into_writes_the_simulated_days_and_replaces_them_on_reload(tmp_path):
    store = profile(visitors_per_day=400)
    simulation = Simulation(store, seed=8, end=END, days=5)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    loaded = load_into(con, simulation)
    again = load_into(con, simulation)
    assert loaded == again
    rows = con.execute("SELECT count(*), count(DISTINCT day), sum((max_step = 6)::INT) FROM visitor_days "
                       "WHERE store_id = ?", [store.store_id]).fetchone()
    assert rows == (loaded.visitor_days, 5, loaded.orders)
    funnel = con.execute("SELECT max_step, count(*) FROM visitor_days WHERE day = ? GROUP BY max_step",
                         [END]).fetchall()
    visitors = simulation.visitors(END)
    assert dict(funnel) == dict(Counter(int(s) for s in visitors.max_step))
    margin = con.execute("SELECT sum(gross_profit_minor) / sum(revenue_minor - refunded_minor) FROM order_profit "
                         "WHERE store_id = ?", [store.store_id]).fetchone()[0]
    assert 0.2 < margin < 0.5  # a plausible gross margin
    assert con.execute("SELECT count(*) FROM orders WHERE paid_at IS NULL OR visitor_id IS NULL").fetchone()[0] == 0
