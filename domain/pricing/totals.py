"""Order totals: lines plus shipping, taxed for the destination country.

Tax is computed and rounded once per line on the line amount
(unit_price * quantity), never per unit and never on the order sum, so every
line's figures can be shown on an invoice and add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from domain.errors import InvalidValue
from domain.money import Rounding, check_currency
from domain.pricing.tax import TaxClass, tax_line, vat_rate_bp


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price: int  # minor units, net or gross depending on the shop's prices_include_tax
    tax_class: str
    weight_grams: int = 0  # weight of one unit

    def __post_init__(self) -> None:
        if not isinstance(self.sku, str) or not self.sku:
            raise InvalidValue("sku", "sku must be a non-empty string", code="totals.invalid_sku")
        if type(self.quantity) is not int or self.quantity <= 0:
            raise InvalidValue("quantity", f"quantity must be a positive integer, got {self.quantity!r}",
                               code="totals.invalid_quantity")
        if type(self.unit_price) is not int or self.unit_price < 0:
            raise InvalidValue("unit_price", f"unit_price must be a non-negative integer, got {self.unit_price!r}",
                               code="totals.invalid_unit_price")
        if type(self.weight_grams) is not int or self.weight_grams < 0:
            raise InvalidValue("weight_grams", f"weight must be a non-negative integer, got {self.weight_grams!r}",
                               code="totals.invalid_weight")
        if self.tax_class not in {c.value for c in TaxClass}:
            raise InvalidValue("tax_class", f"unknown tax class {self.tax_class!r}", code="tax.unknown_class")


@dataclass(frozen=True, slots=True)
class LineTotal:
    sku: str
    quantity: int
    unit_price: int
    amount: int  # unit_price * quantity, as entered (net or gross)
    net: int
    tax: int
    gross: int
    rate_bp: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LineTotal:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Totals:
    currency: str
    prices_include_tax: bool
    lines: tuple[LineTotal, ...]
    subtotal: int  # Σ line amounts, as entered
    shipping: int  # shipping price, as entered
    shipping_tax: int
    tax: int  # Σ line tax + shipping_tax
    total: int  # what the customer pays
    weight_grams: int

    @property
    def shipping_net(self) -> int:
        return self.shipping - self.shipping_tax if self.prices_include_tax else self.shipping

    def to_dict(self) -> dict:
        return {
            "currency": self.currency,
            "prices_include_tax": self.prices_include_tax,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": self.subtotal,
            "shipping": self.shipping,
            "shipping_tax": self.shipping_tax,
            "tax": self.tax,
            "total": self.total,
            "weight_grams": self.weight_grams,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Totals:
        return cls(**{**data, "lines": tuple(LineTotal.from_dict(line) for line in data["lines"])})


def compute_totals(
    lines: Iterable[PricedLine],
    *,
    currency: str,
    country: str,
    prices_include_tax: bool,
    shipping_amount: int,
    rounding: Rounding = Rounding.HALF_UP,
) -> Totals:
    """Price an order shipped to `country`.

    Shipping is taxed at the destination's standard rate, the same way as the
    lines (a simplification: some countries follow the goods' rates). Either
    way total == Σ line net + shipping net + tax.
    """
    check_currency(currency)
    if type(shipping_amount) is not int or shipping_amount < 0:
        raise InvalidValue("shipping_amount", f"shipping must be a non-negative integer, got {shipping_amount!r}",
                           code="totals.invalid_shipping")
    lines = tuple(lines)
    line_totals = []
    for line in lines:
        amount = line.unit_price * line.quantity
        rate = vat_rate_bp(country, line.tax_class)
        t = tax_line(amount, rate, prices_include_tax=prices_include_tax, rounding=rounding)
        line_totals.append(LineTotal(line.sku, line.quantity, line.unit_price, amount, t.net, t.tax, t.gross, rate))
    shipping = tax_line(
        shipping_amount,
        vat_rate_bp(country, TaxClass.STANDARD),
        prices_include_tax=prices_include_tax,
        rounding=rounding,
    )
    subtotal = sum(lt.amount for lt in line_totals)
    tax = sum(lt.tax for lt in line_totals) + shipping.tax
    # Inclusive prices already contain the tax; exclusive ones get it added.
    total = subtotal + shipping_amount + (0 if prices_include_tax else tax)
    return Totals(
        currency=currency,
        prices_include_tax=prices_include_tax,
        lines=tuple(line_totals),
        subtotal=subtotal,
        shipping=shipping_amount,
        shipping_tax=shipping.tax,
        tax=tax,
        total=total,
        weight_grams=sum(line.weight_grams * line.quantity for line in lines),
    )
