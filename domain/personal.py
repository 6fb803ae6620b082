"""The one value type through which personal data enters events.

Email, names, addresses, phone numbers and IP addresses are wrapped in
`PersonalData` together with the id of the person they belong to. The
persistence layer serialises this type through a single transcoding, which
is the place where per-customer encryption (crypto-shredding) plugs in: erase
the subject's key and every copy of the value becomes unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class PersonalData:
    subject_id: UUID  # whose data this is: the key that protects it is per subject
    value: Any  # a JSON value: str for an email, dict for an address

    def __repr__(self) -> str:  # keep personal data out of logs and tracebacks
        return f"PersonalData(subject_id={self.subject_id}, value=<redacted>)"


def reveal(data: PersonalData | None) -> Any:
    return None if data is None else data.value
