"""Shipping zones, rates and quotes."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.pricing.shipping import (
    ShippingRate,
    ShippingZone,
    WeightBracket,
    available_rates,
    quote,
    validate_zones,
    zone_for,
)

STANDARD = ShippingRate("std", "Standard", "flat", amount=490)
PARCEL = ShippingRate(
    "parcel", "Parcel", "weight",
    brackets=(WeightBracket(1_000, 590), WeightBracket(5_000, 990), WeightBracket(20_000, 1990)),
)
FREE = ShippingRate("free", "Free over 50", "free_over", amount=690, free_over=5_000)
DOMESTIC = ShippingZone("dom", "Germany", frozenset({"DE"}), (STANDARD, PARCEL, FREE))
EU = ShippingZone("eu", "EU", frozenset({"AT", "FR", "NL"}), (ShippingRate("eu", "EU", "flat", amount=1290),))
ZONES = [DOMESTIC, EU]


@contextmanager
def raises(field: str, code: str):
    """pytest.raises(InvalidValue) that also checks the error's field and code."""
    with pytest.raises(InvalidValue) as err:
        yield err
    assert (err.value.field, err.value.code) == (field, code)


# --- quotes --------------------------------------------------------------------------


def test_flat_rate():
    assert quote(ZONES, "DE", "std", subtotal=0, weight_grams=0) == 490
    assert quote(ZONES, "DE", "std", subtotal=10**9, weight_grams=10**6) == 490  # flat ignores both


@pytest.mark.parametrize(
    ("grams", "price"),
    [(0, 590), (1, 590), (1_000, 590), (1_001, 990), (5_000, 990), (5_001, 1990), (20_000, 1990)],
)
def test_weight_brackets_are_inclusive_upper_bounds(grams, price):
    assert quote(ZONES, "DE", "parcel", subtotal=0, weight_grams=grams) == price


def test_too_heavy_for_the_last_bracket():
    with raises("shipping_method", "shipping.too_heavy"):
        quote(ZONES, "DE", "parcel", subtotal=0, weight_grams=20_001)


@pytest.mark.parametrize(("subtotal", "price"), [(0, 690), (4_999, 690), (5_000, 0), (5_001, 0)])
def test_free_over_threshold_is_inclusive(subtotal, price):
    assert quote(ZONES, "DE", "free", subtotal=subtotal, weight_grams=0) == price


def test_zone_lookup():
    assert zone_for(ZONES, "FR") is EU
    assert zone_for(ZONES, "DE") is DOMESTIC
    assert quote(ZONES, "NL", "eu", subtotal=100, weight_grams=100) == 1290


@pytest.mark.parametrize("country", ["PL", "de", "", "XX"])
def test_no_zone(country):
    with raises("country", "shipping.no_zone"):
        zone_for(ZONES, country)
    with raises("country", "shipping.no_zone"):
        quote(ZONES, country, "std", subtotal=0, weight_grams=0)
    with raises("country", "shipping.no_zone"):
        available_rates(ZONES, country, subtotal=0, weight_grams=0)


def test_unknown_method_and_method_of_another_zone():
    with raises("shipping_method", "shipping.unknown_method"):
        quote(ZONES, "DE", "express", subtotal=0, weight_grams=0)
    with raises("shipping_method", "shipping.unknown_method"):
        quote(ZONES, "DE", "eu", subtotal=0, weight_grams=0)  # exists, but not for DE


@pytest.mark.parametrize(("field", "kwargs"), [("subtotal", {"subtotal": -1, "weight_grams": 0}),
                                               ("weight_grams", {"subtotal": 0, "weight_grams": -1})])
def test_negative_order_figures_are_rejected(field, kwargs):
    with raises(field, "shipping.invalid_amount"):
        quote(ZONES, "DE", "std", **kwargs)


def test_available_rates_lists_prices_and_skips_what_cannot_carry_the_weight():
    light = available_rates(ZONES, "DE", subtotal=6_000, weight_grams=500)
    assert [(r.id, p) for r, p in light] == [("std", 490), ("parcel", 590), ("free", 0)]
    heavy = available_rates(ZONES, "DE", subtotal=100, weight_grams=25_000)
    assert [(r.id, p) for r, p in heavy] == [("std", 490), ("free", 690)]


# --- zones ---------------------------------------------------------------------------


def test_validate_zones_accepts_disjoint_zones():
    assert validate_zones(ZONES) is None
    assert validate_zones([]) is None


def test_validate_zones_rejects_overlap():
    overlapping = ShippingZone("dach", "DACH", frozenset({"DE", "AT", "CH"}), (STANDARD,))
    with raises("shipping_zones", "shipping.overlapping_zones") as err:
        validate_zones([*ZONES, overlapping])
    assert "AT" in err.value.reason or "DE" in err.value.reason


def test_zone_rejects_a_bare_string_and_bad_codes():
    with raises("countries", "shipping.invalid_country"):
        ShippingZone("z", "Z", "DE", (STANDARD,))  # would otherwise become {"D", "E"}
    with raises("countries", "shipping.invalid_country"):
        ShippingZone("z", "Z", frozenset({"de"}), (STANDARD,))
    with raises("countries", "shipping.invalid_country"):
        ShippingZone("z", "Z", frozenset({"DEU"}), (STANDARD,))


def test_zone_rejects_duplicate_rate_ids():
    with raises("rates", "shipping.duplicate_rate"):
        ShippingZone("z", "Z", frozenset({"DE"}), (STANDARD, STANDARD))


def test_zone_normalises_collections():
    zone = ShippingZone("z", "Z", ["DE", "AT"], [STANDARD])
    assert zone.countries == frozenset({"DE", "AT"}) and zone.rates == (STANDARD,)
    hash(zone)  # frozen and hashable, so zones can be compared and cached safely


# --- rate validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "code", "kwargs"),
    [
        ("kind", "shipping.unknown_kind", {"kind": "pigeon"}),
        ("amount", "shipping.invalid_amount", {"kind": "flat", "amount": -1}),
        ("amount", "shipping.invalid_amount", {"kind": "flat", "amount": 4.9}),
        ("amount", "shipping.invalid_amount", {"kind": "flat", "amount": True}),
        ("brackets", "shipping.invalid_brackets", {"kind": "weight"}),
        ("brackets", "shipping.invalid_brackets", {"kind": "flat", "brackets": (WeightBracket(10, 1),)}),
        ("brackets", "shipping.invalid_brackets",
         {"kind": "weight", "brackets": (WeightBracket(500, 1), WeightBracket(500, 2))}),
        ("brackets", "shipping.invalid_brackets",
         {"kind": "weight", "brackets": (WeightBracket(900, 1), WeightBracket(500, 2))}),
        ("free_over", "shipping.invalid_threshold", {"kind": "free_over", "amount": 500}),
        ("free_over", "shipping.invalid_threshold", {"kind": "flat", "free_over": 100}),
        ("free_over", "shipping.invalid_amount", {"kind": "free_over", "amount": 500, "free_over": -5}),
        ("id", "shipping.invalid_value", {"id": "", "kind": "flat"}),
        ("name", "shipping.invalid_value", {"name": "  ", "kind": "flat"}),
    ],
)
def test_invalid_rates_name_the_field(field, code, kwargs):
    with raises(field, code):
        ShippingRate(**{"id": "r", "name": "R", **kwargs})


@pytest.mark.parametrize(("field", "args"), [("up_to_grams", (-1, 100)), ("amount", (100, -1))])
def test_invalid_brackets(field, args):
    with raises(field, "shipping.invalid_amount"):
        WeightBracket(*args)


# --- serialisation and properties ----------------------------------------------------

brackets_st = st.lists(st.integers(0, 100_000), min_size=1, max_size=5, unique=True).flatmap(
    lambda limits: st.tuples(*(st.builds(WeightBracket, st.just(g), st.integers(0, 10**6)) for g in sorted(limits)))
)
rates_st = st.one_of(
    st.builds(ShippingRate, st.just("flat"), st.text(min_size=1).filter(str.strip), st.just("flat"),
              amount=st.integers(0, 10**6)),
    st.builds(ShippingRate, st.just("weight"), st.just("By weight"), st.just("weight"), brackets=brackets_st),
    st.builds(ShippingRate, st.just("free"), st.just("Free over"), st.just("free_over"),
              amount=st.integers(0, 10**6), free_over=st.integers(0, 10**7)),
)


@given(rate=rates_st)
def test_rate_round_trips_through_json(rate):
    data = json.loads(json.dumps(rate.to_dict()))
    assert ShippingRate.from_dict(data) == rate


@given(rates=st.lists(rates_st, max_size=3, unique_by=lambda r: r.id),
       countries=st.frozensets(st.sampled_from(["DE", "AT", "FR", "CH", "NO"]), min_size=1))
def test_zone_round_trips_through_json(rates, countries):
    zone = ShippingZone("z1", "Zone", countries, tuple(rates))
    assert ShippingZone.from_dict(json.loads(json.dumps(zone.to_dict()))) == zone


@given(rate=rates_st, subtotal=st.integers(0, 10**8), grams=st.integers(0, 200_000))
def test_price_is_never_negative_and_matches_the_kind(rate, subtotal, grams):
    zones = [ShippingZone("z", "Z", frozenset({"DE"}), (rate,))]
    offered = dict((r.id, p) for r, p in available_rates(zones, "DE", subtotal=subtotal, weight_grams=grams))
    price = rate.price(subtotal=subtotal, weight_grams=grams)
    if price is None:
        assert rate.kind == "weight" and grams > rate.brackets[-1].up_to_grams
        assert offered == {}
        return
    assert price >= 0
    assert offered == {rate.id: price} == {rate.id: quote(zones, "DE", rate.id, subtotal=subtotal, weight_grams=grams)}
    if rate.kind == "flat":
        assert price == rate.amount
    elif rate.kind == "free_over":
        assert price == (0 if subtotal >= rate.free_over else rate.amount)
    else:
        assert price == next(b.amount for b in rate.brackets if grams <= b.up_to_grams)
