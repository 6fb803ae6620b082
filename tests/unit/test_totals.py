"""Order totals: per-line tax, shipping tax, and the invariants that tie them together."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.money import Rounding
from domain.pricing.tax import EU_COUNTRIES, TaxClass
from domain.pricing.totals import LineTotal, PricedLine, Totals, compute_totals


def totals(lines, *, inclusive, country="DE", shipping=0, rounding=Rounding.HALF_UP) -> Totals:
    return compute_totals(
        lines, currency="EUR", country=country, prices_include_tax=inclusive,
        shipping_amount=shipping, rounding=rounding,
    )


# --- examples ------------------------------------------------------------------------


def test_exclusive_prices_add_tax_per_line_and_on_shipping():
    t = totals(
        [PricedLine("TEE", 2, 1000, "standard", 200), PricedLine("BOOK", 1, 1500, "reduced", 400)],
        inclusive=False, shipping=500,
    )
    assert [(lt.sku, lt.amount, lt.net, lt.tax, lt.gross, lt.rate_bp) for lt in t.lines] == [
        ("TEE", 2000, 2000, 380, 2380, 1900),
        ("BOOK", 1500, 1500, 105, 1605, 700),
    ]
    assert (t.subtotal, t.shipping, t.shipping_tax, t.tax, t.total) == (3500, 500, 95, 580, 4580)
    assert t.weight_grams == 2 * 200 + 400
    assert t.shipping_net == 500


def test_inclusive_prices_contain_the_tax():
    t = totals([PricedLine("TEE", 1, 11_900, "standard")], inclusive=True, shipping=595)
    line = t.lines[0]
    assert (line.net, line.tax, line.gross) == (10_000, 1_900, 11_900)
    assert (t.subtotal, t.shipping_tax, t.tax, t.total) == (11_900, 95, 1_995, 12_495)
    assert t.shipping_net == 500


def test_tax_is_rounded_per_line_not_per_unit_or_per_order():
    # 5 x 3 at 19 %: per unit 0.57 -> 1 each (5 in all); on the line 2.85 -> 3.
    t = totals([PricedLine("PIN", 5, 3, "standard")], inclusive=False)
    assert t.lines[0].tax == 3
    # Two lines of 52.5 each: rounded per line 53 + 53 = 106; rounding the order sum would give 105.
    t = totals([PricedLine("A", 1, 250, "standard"), PricedLine("B", 1, 250, "standard")], inclusive=False,
               country="RO")  # 250 * 21 % = 52.5
    assert [lt.tax for lt in t.lines] == [53, 53] and t.tax == 106


def test_rounding_mode_is_applied():
    line = [PricedLine("A", 1, 250, "standard")]  # 52.5 in RO
    assert totals(line, inclusive=False, country="RO", rounding=Rounding.HALF_UP).tax == 53
    assert totals(line, inclusive=False, country="RO", rounding=Rounding.HALF_EVEN).tax == 52


def test_shipping_uses_the_destination_standard_rate():
    t = totals([PricedLine("BOOK", 1, 1000, "reduced")], inclusive=False, country="FR", shipping=1000)
    assert t.lines[0].rate_bp == 550
    assert t.shipping_tax == 200  # FR standard 20 %, not the 5.5 % of the goods


def test_destination_country_decides_the_rate():
    line = [PricedLine("TEE", 1, 10_000, "standard")]
    assert totals(line, inclusive=False, country="HU").tax == 2_700
    assert totals(line, inclusive=False, country="LU").tax == 1_700


def test_empty_cart_and_zero_rated_goods():
    assert totals([], inclusive=False, shipping=0).to_dict()["total"] == 0
    t = totals([PricedLine("FOOD", 3, 333, "zero")], inclusive=True)
    assert (t.tax, t.total, t.lines[0].net) == (0, 999, 999)


def test_to_dict_is_plain_json_and_round_trips():
    t = totals([PricedLine("TEE", 2, 1999, "standard", 150)], inclusive=True, shipping=490)
    data = t.to_dict()
    assert isinstance(data["lines"], list) and isinstance(data["lines"][0], dict)
    assert Totals.from_dict(json.loads(json.dumps(data))) == t
    assert LineTotal.from_dict(data["lines"][0]) == t.lines[0]


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("quantity", {"quantity": 0}),
        ("quantity", {"quantity": -1}),
        ("quantity", {"quantity": 1.0}),
        ("unit_price", {"unit_price": -1}),
        ("unit_price", {"unit_price": 9.99}),
        ("weight_grams", {"weight_grams": -5}),
        ("tax_class", {"tax_class": "luxury"}),
        ("sku", {"sku": ""}),
    ],
)
def test_invalid_lines_name_the_field(field, kwargs):
    with pytest.raises(InvalidValue) as err:
        PricedLine(**{"sku": "A", "quantity": 1, "unit_price": 100, "tax_class": "standard", **kwargs})
    assert err.value.field == field
    if field == "tax_class":
        assert err.value.code == "tax.unknown_class"


def test_invalid_order_level_inputs():
    with pytest.raises(InvalidValue) as err:
        totals([], inclusive=False, shipping=-1)
    assert (err.value.field, err.value.code) == ("shipping_amount", "totals.invalid_shipping")
    with pytest.raises(InvalidValue) as err:
        totals([PricedLine("A", 1, 1, "standard")], inclusive=False, country="CH")
    assert (err.value.field, err.value.code) == ("country", "tax.unknown_country")
    with pytest.raises(InvalidValue) as err:
        compute_totals([], currency="XYZ", country="DE", prices_include_tax=False, shipping_amount=0)
    assert err.value.field == "currency"


# --- properties ----------------------------------------------------------------------

lines_st = st.lists(
    st.builds(
        PricedLine,
        sku=st.sampled_from(["A", "B", "C", "D"]),
        quantity=st.integers(1, 999),
        unit_price=st.integers(0, 10**7),
        tax_class=st.sampled_from([c.value for c in TaxClass]),
        weight_grams=st.integers(0, 50_000),
    ),
    max_size=8,
)
orders = st.fixed_dictionaries(
    {
        "lines": lines_st,
        "country": st.sampled_from(sorted(EU_COUNTRIES)),
        "inclusive": st.booleans(),
        "shipping": st.integers(0, 10**5),
        "rounding": st.sampled_from(list(Rounding)),
    }
)


@given(order=orders)
def test_totals_add_up(order):
    t = totals(**order)
    assert t.total == sum(lt.net for lt in t.lines) + t.shipping_net + t.tax
    assert t.tax == sum(lt.tax for lt in t.lines) + t.shipping_tax
    assert t.subtotal == sum(lt.amount for lt in t.lines)
    if order["inclusive"]:
        assert t.total == t.subtotal + t.shipping
        assert all(lt.gross == lt.amount for lt in t.lines)
    else:
        assert t.total == t.subtotal + t.shipping + t.tax
        assert all(lt.net == lt.amount for lt in t.lines)
    for lt, line in zip(t.lines, order["lines"], strict=True):
        assert lt.amount == line.unit_price * line.quantity
        assert lt.net + lt.tax == lt.gross
    assert t.weight_grams == sum(line.weight_grams * line.quantity for line in order["lines"])


@given(order=orders)
def test_no_amount_is_ever_negative(order):
    data = totals(**order).to_dict()
    figures = [v for k, v in data.items() if type(v) is int]
    figures += [v for line in data["lines"] for v in line.values() if type(v) is int]
    assert figures and all(v >= 0 for v in figures)


@given(order=orders)
def test_serialisation_round_trips(order):
    t = totals(**order)
    assert Totals.from_dict(json.loads(json.dumps(t.to_dict()))) == t


@given(order=orders)
def test_inclusive_and_exclusive_pricing_agree(order):
    """Price every line exclusively, then re-enter the resulting gross prices inclusively.

    Line by line the net and tax come back exactly (see test_tax), so the order's
    net, tax and total agree too — within 1 minor unit per line, as promised.
    """
    order = {**order, "inclusive": False}
    ex = totals(**order)
    gross_lines = [
        PricedLine(line.sku, 1, lt.gross, line.tax_class) for line, lt in zip(order["lines"], ex.lines, strict=True)
    ]
    inc = totals(**{**order, "lines": gross_lines, "inclusive": True, "shipping": ex.shipping + ex.shipping_tax})
    assert inc.total == ex.total
    assert abs(inc.tax - ex.tax) <= len(ex.lines) + 1
    for a, b in zip(ex.lines, inc.lines, strict=True):
        assert abs(a.net - b.net) <= 1 and abs(a.tax - b.tax) <= 1 and a.gross == b.gross
