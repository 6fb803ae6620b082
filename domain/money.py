"""Money: integer minor units plus an ISO 4217 currency code.

No floats anywhere near prices, tax or totals. Rounding of fractional
minor units happens only in the explicit helpers below, so every place that
rounds says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import Enum

from domain.errors import CurrencyMismatch, InvalidValue

# ISO 4217 exponents that differ from 2; everything else uses 2 minor digits.
_EXPONENTS = {"JPY": 0, "KRW": 0, "HUF": 2, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3}
SUPPORTED_CURRENCIES = frozenset(
    {"EUR", "USD", "GBP", "CHF", "SEK", "DKK", "NOK", "PLN", "CZK", "HUF", "RON", "BGN", "JPY"}
)


class Rounding(str, Enum):
    HALF_UP = "half_up"
    HALF_EVEN = "half_even"

    @property
    def decimal_mode(self) -> str:
        return ROUND_HALF_UP if self is Rounding.HALF_UP else ROUND_HALF_EVEN


def check_currency(code: str) -> str:
    if code not in SUPPORTED_CURRENCIES:
        raise InvalidValue("currency", f"unsupported currency {code!r}", code="money.unsupported_currency")
    return code


def round_minor(value: Decimal, rounding: Rounding) -> int:
    """Round a fractional amount of minor units to an integer, explicitly."""
    return int(value.quantize(Decimal(1), rounding=rounding.decimal_mode))


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units (cents)
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise InvalidValue("amount", "money amounts are integer minor units", code="money.not_integer")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def to_dict(self) -> dict:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        exp = _EXPONENTS.get(self.currency, 2)
        value = Decimal(self.amount).scaleb(-exp)
        return f"{value:.{exp}f} {self.currency}"
