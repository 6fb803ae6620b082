"""Moments given to queries: tz-aware only, compared with the read models' UTC text.

A naive datetime has no place on a time line (whose midnight?), so it is refused
rather than guessed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from domain.errors import InvalidValue
from projections.read_models.timestamps import utc_text


def require_aware(field: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(field, "must be a datetime with a time zone", code="query.naive_datetime")
    try:
        value.astimezone(timezone.utc)  # year 1 at +14:00 has no UTC equivalent
    except OverflowError:
        raise InvalidValue(field, "is outside the supported range of dates", code="query.datetime_out_of_range") from None
    return value


def stored(field: str, value: object) -> str:
    """`value` as the read models store moments (fixed-width UTC text)."""
    return utc_text(require_aware(field, value))
