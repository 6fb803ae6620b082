"""Session: a signed-in customer or admin user, opened by a bearer token.

Like every token, the session's is kept only as its SHA-256 (domain/tokens.py).
Expiry is a fixed moment chosen at sign-in, not a sliding window: a session
does not gain an event per request. Whether the subject may still act (an admin
user deactivated meanwhile) is the subject's own state, checked beside
`accepts` by whoever authenticates the request.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue

SUBJECT_KINDS = ("customer", "admin")
END_REASONS = ("signed_out", "revoked", "password_changed", "subject_deactivated")
MAX_TTL_SECONDS = 90 * 24 * 3600
MIN_TTL_SECONDS = 60
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _aware(moment: datetime, field: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValue(field, "must be a datetime with a time zone", code="session.naive_datetime")
    return moment


class Session(Aggregate):
    TOPIC = "trafi.session.v1"

    @event("Created", topic="trafi.session.started.v1")
    def __init__(
        self, id: UUID, store_id: UUID, subject_kind: str, subject_id: UUID, token_hash: str, expires_at: str,
    ):
        self.store_id = store_id
        self.subject_kind = subject_kind
        self.subject_id = subject_id
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.ended_reason: str | None = None

    @classmethod
    def start(
        cls, id: UUID, *, store_id: UUID, subject_kind: str, subject_id: UUID, token_hash: str,
        issued_at: datetime, ttl_seconds: int,
    ) -> Session:
        if subject_kind not in SUBJECT_KINDS:
            raise InvalidValue("subject_kind", f"one of {', '.join(SUBJECT_KINDS)}", code="session.invalid_subject")
        if not isinstance(token_hash, str) or not _SHA256_HEX.match(token_hash):
            raise InvalidValue(
                "token_hash", "must be the SHA-256 of the token, as 64 lower-case hex digits",
                code="session.invalid_hash",
            )
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) \
                or not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidValue(
                "ttl_seconds", f"between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} (90 days)", code="session.invalid_ttl"
            )
        expires_at = _aware(issued_at, "issued_at") + timedelta(seconds=ttl_seconds)
        return cls(
            id=id, store_id=store_id, subject_kind=subject_kind, subject_id=subject_id, token_hash=token_hash,
            expires_at=expires_at.isoformat(),
        )

    @property
    def ended(self) -> bool:
        return self.ended_reason is not None

    def end(self, reason: str = "signed_out") -> None:
        """Ending an ended session changes nothing: signing out twice is not an error."""
        if reason not in END_REASONS:
            raise InvalidValue("reason", f"one of {', '.join(END_REASONS)}", code="session.invalid_reason")
        if not self.ended:
            self._ended(reason=reason)

    @event("Ended", topic="trafi.session.ended.v1")
    def _ended(self, reason: str) -> None:
        self.ended_reason = reason

    def accepts(self, token_hash: str, now: datetime) -> bool:
        if self.ended or _aware(now, "now") >= datetime.fromisoformat(self.expires_at):
            return False
        return hmac.compare_digest(str(token_hash).encode(), self.token_hash.encode())
