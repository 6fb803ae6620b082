"""VAT table and per-line tax arithmetic."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.money import Rounding
from domain.pricing.tax import EU_COUNTRIES, VAT_SOURCE, LineTax, TaxClass, tax_line, vat_rate_bp

DATA_FILE = Path(__file__).resolve().parents[2] / "domain" / "data" / "eu_vat_rates.json"
EU_27 = {
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
}
RATE_KEYS = ("standard", "reduced", "reduced_alt", "super_reduced")
ALL_RATES = sorted({vat_rate_bp(c, k.value) for c in EU_COUNTRIES for k in TaxClass})

rates = st.sampled_from(ALL_RATES) | st.integers(0, 9_999)
amounts = st.integers(0, 10**12)
roundings = st.sampled_from(list(Rounding))


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


# --- the data file -------------------------------------------------------------------


def test_all_27_member_states_and_nothing_else(data):
    assert set(data["rates"]) == EU_27
    assert EU_COUNTRIES == EU_27
    assert "EL" not in EU_COUNTRIES and "GB" not in EU_COUNTRIES


@pytest.mark.parametrize("country", sorted(EU_27))
def test_each_country_has_a_plausible_rate_row(data, country):
    row = data["rates"][country]
    assert set(row) == set(RATE_KEYS)
    assert type(row["standard"]) is int and 1500 <= row["standard"] <= 2800  # EU minimum is 15 %
    for key in RATE_KEYS[1:]:
        value = row[key]
        assert value is None or (type(value) is int and 0 < value < row["standard"]), (country, key)
    if row["super_reduced"] is not None:
        assert row["super_reduced"] < 500  # super-reduced means below the 5 % floor


def test_data_file_names_its_source_and_date(data):
    assert "European Commission" in data["source"]
    assert "VAT rates applied in the Member States of the European Union" in data["source"]
    assert "TEDB" in data["source"]
    assert date.fromisoformat(data["as_of"]) == date(2026, 1, 1)
    assert VAT_SOURCE == {"source": data["source"], "as_of": data["as_of"]}
    notes = " ".join(data["notes"]).lower()
    assert "verify" in notes
    for key in RATE_KEYS:
        assert key in notes


@pytest.mark.parametrize(
    ("country", "tax_class", "rate"),
    [
        ("DE", "standard", 1900),
        ("DE", "reduced", 700),
        ("FR", "standard", 2000),
        ("FR", "reduced", 550),
        ("FR", "reduced_alt", 1000),
        ("FR", "super_reduced", 210),
        ("LU", "standard", 1700),
        ("HU", "standard", 2700),
        ("FI", "standard", 2550),
        ("FI", "reduced", 1350),  # 14 % -> 13.5 % on 2026-01-01
        ("SK", "standard", 2300),
        ("EE", "standard", 2400),
        ("RO", "standard", 2100),
        ("RO", "reduced", 1100),
        ("LT", "reduced", 1200),  # 9 % replaced on 2026-01-01
        ("AT", "reduced", 1000),
        ("AT", "reduced_alt", 1300),
        ("IE", "super_reduced", 480),
        ("DK", "standard", 2500),
    ],
)
def test_known_rates(country, tax_class, rate):
    assert vat_rate_bp(country, tax_class) == rate


# --- lookups and fallbacks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "tax_class", "rate", "why"),
    [
        ("DE", "super_reduced", 700, "no super-reduced, no alt -> reduced"),
        ("DE", "reduced_alt", 700, "no alt -> reduced"),
        ("AT", "super_reduced", 1300, "no super-reduced -> reduced_alt first"),
        ("DK", "reduced", 2500, "no reduced rate at all -> standard"),
        ("DK", "reduced_alt", 2500, "-> reduced -> standard"),
        ("DK", "super_reduced", 2500, "whole chain down to standard"),
        ("BG", "reduced_alt", 900, "no alt -> reduced"),
    ],
)
def test_missing_class_falls_back(country, tax_class, rate, why):
    assert vat_rate_bp(country, tax_class) == rate, why


@pytest.mark.parametrize("country", sorted(EU_27))
def test_zero_class_is_zero_everywhere_and_fallbacks_never_exceed_standard(country):
    assert vat_rate_bp(country, "zero") == 0
    standard = vat_rate_bp(country, TaxClass.STANDARD)
    for cls in TaxClass:
        assert 0 <= vat_rate_bp(country, cls) <= standard


def test_accepts_enum_members_as_well_as_strings():
    assert vat_rate_bp("DE", TaxClass.REDUCED) == vat_rate_bp("DE", "reduced") == 700


@pytest.mark.parametrize("country", ["XX", "EL", "de", "", "GB", "CH"])
def test_unknown_country(country):
    with pytest.raises(InvalidValue) as err:
        vat_rate_bp(country, "standard")
    assert err.value.code == "tax.unknown_country"
    assert err.value.field == "country"


@pytest.mark.parametrize("tax_class", ["luxury", "STANDARD", "", "exempt"])
def test_unknown_tax_class(tax_class):
    with pytest.raises(InvalidValue) as err:
        vat_rate_bp("DE", tax_class)
    assert err.value.code == "tax.unknown_class"
    assert err.value.field == "tax_class"


# --- tax_line: examples --------------------------------------------------------------


def test_exclusive_adds_tax_on_top():
    assert tax_line(10_000, 1900, prices_include_tax=False, rounding=Rounding.HALF_UP) == LineTax(
        net=10_000, tax=1_900, gross=11_900, rate_bp=1900
    )


def test_inclusive_extracts_tax():
    assert tax_line(11_900, 1900, prices_include_tax=True, rounding=Rounding.HALF_UP) == LineTax(
        net=10_000, tax=1_900, gross=11_900, rate_bp=1900
    )
    # 1999 * 19 / 119 = 319.17... -> 319
    assert tax_line(1999, 1900, prices_include_tax=True, rounding=Rounding.HALF_UP).tax == 319


@pytest.mark.parametrize(
    ("amount", "rate", "half_up", "half_even"),
    [
        (250, 2100, 53, 52),  # 52.5
        (350, 2100, 74, 74),  # 73.5: 74 is already even
        (1, 5000, 1, 0),  # 0.5
        (3, 5000, 2, 2),  # 1.5
    ],
)
def test_half_up_and_half_even_on_exact_ties(amount, rate, half_up, half_even):
    assert tax_line(amount, rate, prices_include_tax=False, rounding=Rounding.HALF_UP).tax == half_up
    assert tax_line(amount, rate, prices_include_tax=False, rounding=Rounding.HALF_EVEN).tax == half_even


def test_zero_rate_and_zero_amount():
    assert tax_line(999, 0, prices_include_tax=True, rounding=Rounding.HALF_UP) == LineTax(999, 0, 999, 0)
    assert tax_line(0, 2100, prices_include_tax=False, rounding=Rounding.HALF_UP) == LineTax(0, 0, 0, 2100)


@pytest.mark.parametrize("inclusive", [True, False])
def test_negative_amount_is_rejected(inclusive):
    with pytest.raises(InvalidValue) as err:
        tax_line(-1, 2100, prices_include_tax=inclusive, rounding=Rounding.HALF_UP)
    assert err.value.code == "tax.negative_amount"
    assert err.value.field == "amount"


@pytest.mark.parametrize("amount", [1.5, True, "100"])
def test_non_integer_amount_is_rejected(amount):
    with pytest.raises(InvalidValue) as err:
        tax_line(amount, 2100, prices_include_tax=False, rounding=Rounding.HALF_UP)
    assert err.value.field == "amount"


@pytest.mark.parametrize("rate", [-1, 10_000, 21.0])
def test_invalid_rate_is_rejected(rate):
    with pytest.raises(InvalidValue) as err:
        tax_line(100, rate, prices_include_tax=False, rounding=Rounding.HALF_UP)
    assert err.value.code == "tax.invalid_rate"


# --- tax_line: properties ------------------------------------------------------------


@given(amount=amounts, rate=rates, inclusive=st.booleans(), rounding=roundings)
def test_line_tax_is_consistent_and_never_negative(amount, rate, inclusive, rounding):
    t = tax_line(amount, rate, prices_include_tax=inclusive, rounding=rounding)
    assert t.net + t.tax == t.gross
    assert min(t.net, t.tax, t.gross) >= 0
    assert (t.gross if inclusive else t.net) == amount
    assert t.rate_bp == rate
    # The rounded tax is within half a minor unit of the exact tax.
    exact = Fraction(amount * rate, (10_000 + rate) if inclusive else 10_000)
    assert abs(t.tax - exact) <= Fraction(1, 2)


@given(net=amounts, rate=rates, rounding=roundings)
@example(net=250, rate=2100, rounding=Rounding.HALF_UP)
def test_exclusive_then_inclusive_round_trips(net, rate, rounding):
    """An exclusive net price p gives gross g; taxing g inclusively gives p back.

    The contract is "within 1 minor unit". It is in fact exact: the exclusive
    tax is off the true tax by |e| <= 1/2, so the inclusive extraction from g is
    off the exclusive tax by |e| * rate / (10000 + rate) < 1/2 and rounds back.
    """
    ex = tax_line(net, rate, prices_include_tax=False, rounding=rounding)
    inc = tax_line(ex.gross, rate, prices_include_tax=True, rounding=rounding)
    assert inc.gross == ex.gross
    assert abs(inc.net - net) <= 1 and abs(inc.tax - ex.tax) <= 1
    assert (inc.net, inc.tax) == (net, ex.tax)


@given(gross=amounts, rate=rates, rounding=roundings)
def test_inclusive_then_exclusive_agrees_within_one(gross, rate, rounding):
    inc = tax_line(gross, rate, prices_include_tax=True, rounding=rounding)
    ex = tax_line(inc.net, rate, prices_include_tax=False, rounding=rounding)
    assert ex.net == inc.net
    assert abs(ex.gross - gross) <= 1
    assert abs(ex.tax - inc.tax) <= 1


@given(amount=amounts, rate=rates, inclusive=st.booleans())
@example(amount=250, rate=2100, inclusive=False)  # 52.5
@example(amount=1, rate=5000, inclusive=False)  # 0.5
@example(amount=3, rate=5000, inclusive=True)  # 3 * 5000 / 15000 = 1.0, not a tie
@example(amount=15, rate=5000, inclusive=True)  # 15 * 5000 / 15000 = 5.0
@example(amount=3, rate=2500, inclusive=True)  # 3 * 2500 / 12500 = 0.6
def test_half_even_and_half_up_differ_only_on_exact_halves(amount, rate, inclusive):
    up = tax_line(amount, rate, prices_include_tax=inclusive, rounding=Rounding.HALF_UP)
    even = tax_line(amount, rate, prices_include_tax=inclusive, rounding=Rounding.HALF_EVEN)
    exact = Fraction(amount * rate, (10_000 + rate) if inclusive else 10_000)
    is_tie = exact.denominator == 2
    if is_tie:
        assert up.tax == exact + Fraction(1, 2)  # half up: away from zero
        assert even.tax % 2 == 0 and abs(even.tax - exact) == Fraction(1, 2)
    else:
        assert up == even


# (rate, inclusive, step, offset): amount = step * k + offset always lands on k' + 1/2.
TIE_FAMILIES = [
    (5000, False, 2, 1),  # (2k+1) * 50 %  = k + 1/2
    (2100, False, 100, 50),  # (100k+50) * 21 % = 21k + 10.5
    (1900, False, 100, 50),  # 19k + 9.5
    (2000, True, 6, 3),  # (6k+3) * 20/120 = k + 1/2
]


@given(k=st.integers(0, 10**9), family=st.sampled_from(TIE_FAMILIES))
def test_exact_ties_round_up_or_to_even(k, family):
    """Random inputs rarely hit .5 exactly, so build ties on purpose."""
    rate, inclusive, step, offset = family
    amount = step * k + offset
    exact = Fraction(amount * rate, (10_000 + rate) if inclusive else 10_000)
    assert exact.denominator == 2
    up = tax_line(amount, rate, prices_include_tax=inclusive, rounding=Rounding.HALF_UP).tax
    even = tax_line(amount, rate, prices_include_tax=inclusive, rounding=Rounding.HALF_EVEN).tax
    assert up == exact + Fraction(1, 2)
    assert even % 2 == 0 and abs(even - exact) == Fraction(1, 2)
