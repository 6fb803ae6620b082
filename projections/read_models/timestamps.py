"""How read models store moments: fixed-width ISO-8601 UTC text.

Every timestamp column is written as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. One width and
one zone mean plain string comparison is chronological order on both SQLite and
PostgreSQL, so range filters and keyset pagination can compare TEXT directly.
(`datetime.isoformat()` drops the microseconds when they are zero and keeps the
original offset, which would break that.)
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("read models store tz-aware moments only")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text)
