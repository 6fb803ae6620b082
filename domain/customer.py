"""Customer: an account or a guest. Guests are customers without a password.

The id is derived from the store and the e-mail (domain.ids.customer_id), so a
guest who comes back with the same e-mail is the same customer: that is the
returning-customer identity. All personal fields are `PersonalData`.
"""

from __future__ import annotations

import re
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue
from domain.personal import PersonalData
from domain.pricing.tax import EU_COUNTRIES

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "postal_code", "phone")


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not EMAIL_PATTERN.match(email):
        raise InvalidValue("email", "not a valid e-mail address", code="customer.invalid_email")
    return email


def check_address(address: dict, field: str = "address") -> dict:
    """Validate a postal address; returns the cleaned fields (country separate)."""
    country = str(address.get("country", "")).upper()
    if country not in EU_COUNTRIES:
        raise InvalidValue(f"{field}.country", f"unknown or unsupported country {country!r}", code="address.unknown_country")
    cleaned = {k: str(address.get(k) or "").strip()[:200] for k in ADDRESS_FIELDS}
    for required in ("name", "line1", "city", "postal_code"):
        if not cleaned[required]:
            raise InvalidValue(f"{field}.{required}", "is required", code="address.missing_field")
    return {"country": country, **cleaned}


class Customer(Aggregate):
    TOPIC = "trafi.customer.v1"
    # Snapshots taken before this counter existed do not carry it; they start from here.
    credentials_version = 0

    @event("Created", topic="trafi.customer.registered.v1")
    def __init__(self, id: UUID, store_id: UUID, email: PersonalData, password_hash: str | None):
        self.store_id = store_id
        self.email = email
        self.password_hash = password_hash
        self.addresses: dict[str, dict] = {}  # address id → {"country": …, "details": PersonalData}
        # How many times the password changed. Counted by the mutators, not carried by any
        # event, so streams written before it existed replay to the right count. A reset
        # link remembers the count it was issued at: any change of password voids it.
        self.credentials_version = 0

    @property
    def is_guest(self) -> bool:
        return self.password_hash is None

    @classmethod
    def register(cls, id: UUID, *, store_id: UUID, email: str, password_hash: str | None) -> Customer:
        return cls(id=id, store_id=store_id, email=PersonalData(id, normalise_email(email)), password_hash=password_hash)

    def set_password(self, password_hash: str) -> None:
        self._password_set(password_hash=password_hash)

    @event("PasswordSet", topic="trafi.customer.password_set.v1")
    def _password_set(self, password_hash: str) -> None:
        self.password_hash = password_hash
        self.credentials_version += 1

    def add_address(self, address_id: str, address: dict) -> None:
        cleaned = check_address(address)
        if len(self.addresses) >= 20:
            raise InvalidValue("address", "at most 20 saved addresses", code="customer.too_many_addresses")
        country = cleaned.pop("country")
        self._address_added(address_id=address_id, country=country, details=PersonalData(self.id, cleaned))

    @event("AddressAdded", topic="trafi.customer.address_added.v1")
    def _address_added(self, address_id: str, country: str, details: PersonalData) -> None:
        self.addresses[address_id] = {"country": country, "details": details}

    def remove_address(self, address_id: str) -> None:
        if address_id not in self.addresses:
            raise InvalidValue("address_id", f"no address {address_id}", code="customer.unknown_address")
        self._address_removed(address_id=address_id)

    @event("AddressRemoved", topic="trafi.customer.address_removed.v1")
    def _address_removed(self, address_id: str) -> None:
        del self.addresses[address_id]
