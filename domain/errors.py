"""Typed domain errors with stable codes.

The HTTP layer maps each family to a status (NotFound → 404, Conflict → 409,
everything else → 422) and shows `code`, `field` and `reason` as problem+json.
Codes are part of the public contract: never rename one.
"""

from __future__ import annotations


class DomainError(Exception):
    code: str = "domain.error"
    field: str | None = None

    def __init__(self, reason: str, *, code: str | None = None, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if code:
            self.code = code
        if field:
            self.field = field

    def to_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "reason": self.reason}


class InvalidValue(DomainError):
    code = "validation.invalid_value"

    def __init__(self, field: str, reason: str, *, code: str | None = None):
        super().__init__(reason, code=code, field=field)


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, what: str, key: object, *, code: str | None = None):
        super().__init__(f"{what} {key} not found", code=code or f"{what}.not_found")
        self.what = what


class Conflict(DomainError):
    """The command lost a race too many times, or repeats a key with a different body."""

    code = "conflict"


class CurrencyMismatch(DomainError):
    code = "money.currency_mismatch"

    def __init__(self, expected: str, got: str):
        super().__init__(f"expected currency {expected}, got {got}", field="currency")


class InvalidTransition(DomainError):
    def __init__(self, entity: str, current: str, target: str):
        super().__init__(
            f"{entity} cannot go from {current} to {target}", code=f"{entity}.invalid_transition"
        )
        self.current = current
        self.target = target


class InsufficientStock(DomainError):
    code = "stock.insufficient"

    def __init__(self, sku: str, requested: int, available: int):
        super().__init__(
            f"only {available} of {sku} available, {requested} requested", field="quantity"
        )
        self.sku = sku
        self.requested = requested
        self.available = available


class InvalidCredentials(DomainError):
    """Sign-in failed. One error for every cause (unknown e-mail, guest, wrong password,
    deactivated user), so that the answer never reveals which accounts exist."""

    code = "auth.invalid_credentials"

    def __init__(self) -> None:
        super().__init__("e-mail or password is incorrect")
