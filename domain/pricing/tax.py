"""EU VAT: which rate applies, and how much tax one line carries.

Rates come from the packaged table `domain/data/eu_vat_rates.json`, read once
at import, in integer basis points (2100 = 21 %). Tax is computed per line and
rounded once, explicitly, via `round_minor`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import Enum
from pathlib import Path

from domain.errors import InvalidValue
from domain.money import Rounding, round_minor

_DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "eu_vat_rates.json"
_BP = 10_000  # basis points in 100 %


class TaxClass(str, Enum):
    STANDARD = "standard"
    REDUCED = "reduced"
    REDUCED_ALT = "reduced_alt"
    SUPER_REDUCED = "super_reduced"
    ZERO = "zero"


# When a country lacks a class, use the next one down this chain. It ends at
# standard because goods without a reduced rate in a country are taxed at its
# standard rate (e.g. everything in DK).
_FALLBACK: dict[TaxClass, tuple[TaxClass, ...]] = {
    TaxClass.STANDARD: (TaxClass.STANDARD,),
    TaxClass.REDUCED: (TaxClass.REDUCED, TaxClass.STANDARD),
    TaxClass.REDUCED_ALT: (TaxClass.REDUCED_ALT, TaxClass.REDUCED, TaxClass.STANDARD),
    TaxClass.SUPER_REDUCED: (
        TaxClass.SUPER_REDUCED,
        TaxClass.REDUCED_ALT,
        TaxClass.REDUCED,
        TaxClass.STANDARD,
    ),
}


def _load() -> tuple[dict, dict[str, dict[str, int | None]]]:
    raw = json.loads(_DATA_FILE.read_text(encoding="utf-8"))
    rates = raw["rates"]
    # Fail at import, not at checkout, if the table is malformed.
    for country, row in rates.items():
        for cls in _FALLBACK:
            value = row[cls.value]
            ok = value is None or (type(value) is int and 0 < value < _BP)
            if not ok or (cls is TaxClass.STANDARD and value is None):
                raise ValueError(f"bad VAT rate {country}.{cls.value}={value!r} in {_DATA_FILE}")
    return raw, rates


_RAW, _RATES = _load()
EU_COUNTRIES: frozenset[str] = frozenset(_RATES)
VAT_SOURCE: dict = {"source": _RAW["source"], "as_of": _RAW["as_of"]}


def _tax_class(tax_class: str) -> TaxClass:
    try:
        return TaxClass(tax_class)
    except ValueError:
        raise InvalidValue("tax_class", f"unknown tax class {tax_class!r}", code="tax.unknown_class") from None


def vat_rate_bp(country: str, tax_class: str) -> int:
    """The VAT rate in basis points for `tax_class` goods sent to `country` (ISO alpha-2)."""
    row = _RATES.get(country)
    if row is None:
        raise InvalidValue("country", f"no VAT rates for country {country!r}", code="tax.unknown_country")
    cls = _tax_class(tax_class)
    if cls is TaxClass.ZERO:
        return 0
    for candidate in _FALLBACK[cls]:
        rate = row[candidate.value]
        if rate is not None:
            return rate
    raise AssertionError("unreachable: every country has a standard rate")  # checked in _load


@dataclass(frozen=True, slots=True)
class LineTax:
    net: int
    tax: int
    gross: int
    rate_bp: int


def _ratio_minor(numerator: int, denominator: int, rounding: Rounding) -> int:
    """numerator / denominator rounded to whole minor units.

    The Decimal precision is sized to the operands so the quotient is never
    rounded onto (or off) an exact .5 before `round_minor` decides the tie.
    """
    with localcontext() as ctx:
        ctx.prec = len(str(abs(numerator))) + len(str(abs(denominator))) + 2
        return round_minor(Decimal(numerator) / Decimal(denominator), rounding)


def tax_line(amount: int, rate_bp: int, *, prices_include_tax: bool, rounding: Rounding) -> LineTax:
    """Split one line amount into net, tax and gross.

    Inclusive prices: `amount` is gross and the tax is extracted from it.
    Exclusive prices: `amount` is net and the tax is added on top.
    Either way net + tax == gross exactly; only the tax is rounded.
    """
    if type(amount) is not int:  # bool and float are not minor units
        raise InvalidValue("amount", "amounts are integer minor units", code="money.not_integer")
    if amount < 0:
        raise InvalidValue("amount", f"amount must not be negative, got {amount}", code="tax.negative_amount")
    if type(rate_bp) is not int or not 0 <= rate_bp < _BP:
        raise InvalidValue("rate_bp", f"rate must be 0..9999 bp, got {rate_bp}", code="tax.invalid_rate")
    if prices_include_tax:
        tax = _ratio_minor(amount * rate_bp, _BP + rate_bp, rounding)
        return LineTax(net=amount - tax, tax=tax, gross=amount, rate_bp=rate_bp)
    tax = _ratio_minor(amount * rate_bp, _BP, rounding)
    return LineTax(net=amount, tax=tax, gross=amount + tax, rate_bp=rate_bp)
