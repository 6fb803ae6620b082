"""PasswordResetRequest: one reset link sent to one customer account.

Its own aggregate, not a field of Customer, because the link must lead back to
the account: the token is `tokens.derive(secret, "rt", <request id>)`, so the
request id inside the token finds the request, and the request names the
customer. Only the token's SHA-256 is stored.

A link works once, until it expires, and only while the account's password is
the one it had when the link was issued (`Customer.credentials_version`): a
successful reset — or any other change of password — voids every other link.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.customer import Customer
from domain.errors import InvalidValue

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def invalid_reset_token() -> InvalidValue:
    # One answer for unknown, used, expired and superseded links alike: which one it
    # was would tell a guesser something, and the person holding the link only needs a new one.
    return InvalidValue("token", "this reset link is invalid or has expired", code="customer.invalid_reset_token")


class PasswordResetRequest(Aggregate):
    TOPIC = "trafi.password_reset.v1"

    @event("Created", topic="trafi.password_reset.requested.v1")
    def __init__(
        self, id: UUID, store_id: UUID, customer_id: UUID, token_hash: str, expires_at: datetime,
        credentials_version: int,
    ):
        self.store_id = store_id
        self.customer_id = customer_id
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.credentials_version = credentials_version
        self.used = False

    @classmethod
    def request(cls, id: UUID, *, customer: Customer, token_hash: str, expires_at: datetime) -> PasswordResetRequest:
        if customer.is_guest:
            raise InvalidValue("email", "a guest has no password to reset", code="customer.no_account")
        if not _SHA256_HEX.match(token_hash or ""):
            raise InvalidValue("token_hash", "must be a SHA-256 in lower-case hex", code="customer.invalid_token_hash")
        if expires_at.tzinfo is None:
            raise InvalidValue("expires_at", "must be timezone-aware", code="customer.invalid_expiry")
        return cls(
            id=id, store_id=customer.store_id, customer_id=customer.id, token_hash=token_hash,
            expires_at=expires_at, credentials_version=customer.credentials_version,
        )

    def check_token(self, customer: Customer | None, token_hash: str, now: datetime) -> None:
        """Raise `customer.invalid_reset_token` unless this link may set `customer`'s password now."""
        # compare_digest first and always: the time taken must not depend on how much of the hash matched.
        matches = hmac.compare_digest(self.token_hash.encode(), (token_hash or "").encode())
        if not (
            matches
            and not self.used
            and now < self.expires_at
            and customer is not None
            and customer.id == self.customer_id
            and customer.credentials_version == self.credentials_version
        ):
            raise invalid_reset_token()

    def reset_password(self, customer: Customer, *, token_hash: str, new_password_hash: str, now: datetime) -> None:
        self.check_token(customer, token_hash, now)
        customer.set_password(new_password_hash)  # moves the customer's version on: other links stop working
        self._used()

    @event("Used", topic="trafi.password_reset.used.v1")
    def _used(self) -> None:
        self.used = True
