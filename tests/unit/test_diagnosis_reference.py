"""The reference data file: it names its source, its ranges hang together, and causes map to playbooks."""

from __future__ import annotations

import json
import math

import pytest

from autopilot.diagnosis import benchmarks
from autopilot.diagnosis.causes import rank_causes
from autopilot.diagnosis.segments import Segment
from autopilot.warehouse.schema import FUNNEL_STEPS

RAW = json.loads(benchmarks.DATA_FILE.read_text())


def test_the_file_names_its_source_and_says_what_is_whose():
    reference = benchmarks.load()
    assert reference.source["publisher"] == "Baymard Institute"
    assert reference.source["url"].startswith("https://baymard.com/")
    assert reference.as_of
    taken = reference.source["figures_taken_from_source"]
    assert taken["average_cart_abandonment_rate"]["value"] == pytest.approx(0.70)
    assert taken["checkout_abandonment_reasons"]["extra_costs_too_high"] == pytest.approx(0.48)
    assert {step["origin"] for step in RAW["steps"].values()} <= {"trafi_assumption", "trafi_derived_from_source"}
    assert all(body["origin"] == "trafi_assumption" for body in RAW["playbooks"].values())


def test_typical_cart_to_order_conversion_is_the_sources_cart_abandonment():
    reference = benchmarks.load()
    cart_to_order = math.prod(reference.steps[s].typical for s in ("add_to_cart", "checkout_start", "shipping", "payment"))
    assert 1 - cart_to_order == pytest.approx(0.70, abs=0.03)


def test_every_step_has_a_wide_range_and_every_cause_a_known_playbook():
    reference = benchmarks.load()
    assert list(reference.steps) == list(FUNNEL_STEPS[:-1])
    for step, span in reference.steps.items():
        assert span.high - span.low >= 0.25 or span.typical < 0.2, step  # a prior, not a truth
    for step, causes in reference.causes.items():
        for cause in causes:
            assert cause.weight_origin == "trafi_assumption" or cause.weight_origin.startswith("source: "), cause
            if cause.weight_origin.startswith("source: "):
                reason = cause.weight_origin.removeprefix("source: ")
                assert RAW["source"]["figures_taken_from_source"]["checkout_abandonment_reasons"][reason] == cause.weight


def test_the_playbooks_of_autopilot_md_are_there_with_their_implementation():
    playbooks = benchmarks.load().playbooks
    assert playbooks["show_shipping_cost_early"].implementation == {
        "method": "feature_flag", "flag_key": "checkout.shipping_estimate_on_cart"}
    assert playbooks["guest_checkout_first"].implementation["flag_key"] == "checkout.guest_default"
    assert playbooks["trust_signals_at_payment"].implementation["flag_key"] == "checkout.trust_badges"
    assert playbooks["abandoned_cart_recovery"].implementation["method"] == "workflow"
    assert playbooks["bundle_discount"].implementation["method"] == "price_change"
    assert playbooks["bundle_discount"].risk == "high" and playbooks["bundle_discount"].margin_cost_rate > 0


@pytest.mark.parametrize("breakage", [
    lambda raw: raw["source"].pop("url"),
    lambda raw: raw.pop("as_of"),
    lambda raw: raw["steps"]["shipping"].update(low=0.9),
    lambda raw: raw["steps"].pop("payment"),
    lambda raw: raw["causes"]["shipping"][0].update(playbook="no_such_playbook"),
    lambda raw: raw["playbooks"]["guest_checkout_first"].pop("flag_key"),
    lambda raw: raw["playbooks"]["bundle_discount"].update(risk="extreme"),
])
def test_a_malformed_file_is_refused_at_load(breakage):
    raw = json.loads(benchmarks.DATA_FILE.read_text())
    breakage(raw)
    with pytest.raises((ValueError, KeyError)):
        benchmarks.parse(raw)


def test_causes_follow_the_step_and_the_segment_nudges_them():
    reference = benchmarks.load()
    shipping = rank_causes("shipping", Segment(), reference)
    assert shipping[0].cause == "unexpected_shipping_costs" and shipping[0].playbook == "show_shipping_cost_early"
    assert sum(c.share for c in shipping) == pytest.approx(1.0)
    in_a_country = rank_causes("shipping", Segment.of(device="mobile", country="FR"), reference)
    assert in_a_country[0].share > shipping[0].share and in_a_country[0].hints == ("country=FR ×1.5",)
    start = rank_causes("checkout_start", Segment(), reference)
    assert start[0].playbook == "guest_checkout_first"
    on_mobile = rank_causes("checkout_start", Segment.of(device="mobile"), reference)
    assert on_mobile[0].cause == "checkout_too_long" and on_mobile[0].playbook is None  # no playbook: the next one's used
    trust_new = rank_causes("payment", Segment.of(visitor_type="new"), reference)[0]
    trust_returning = next(c for c in rank_causes("payment", Segment.of(visitor_type="returning"), reference)
                           if c.cause == "payment_trust")
    assert trust_new.cause == "payment_trust" and trust_new.share > trust_returning.share
    assert rank_causes("product_view", Segment(), reference)[0].playbook == "bundle_discount"
    assert rank_causes("add_to_cart", Segment(), reference)[0].playbook == "abandoned_cart_recovery"
    assert [c.playbook for c in rank_causes("visit", Segment(), reference)] == [None]
