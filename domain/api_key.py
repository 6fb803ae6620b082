"""ApiKey: a store's credential for machines — publishable (storefront) or secret (scoped).

The aggregate never sees a token, only its SHA-256 (domain/tokens.py): the
token is derived again from the key's id and generation when it is needed, so
the event log cannot leak one. Rotation moves to the next generation; the
previous token may stay valid for a grace period so that clients can be
redeployed without downtime. Only the immediately previous token gets grace:
rotating again ends the older one's grace at once, which bounds how many
tokens can open one key to two.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidValue
from domain.roles import check_scopes

KINDS = ("publishable", "secret")
MAX_GRACE_SECONDS = 7 * 24 * 3600
MAX_NAME_LENGTH = 100
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ApiKeyRevoked(Conflict):
    code = "api_key.revoked"

    def __init__(self) -> None:
        super().__init__("this API key has been revoked")


def _secret_hash(value: str, field: str = "secret_hash") -> str:
    if not isinstance(value, str) or not _SHA256_HEX.match(value):
        raise InvalidValue(
            field, "must be the SHA-256 of the token, as 64 lower-case hex digits", code="api_key.invalid_hash"
        )
    return value


def _aware(at: datetime, field: str) -> datetime:
    # A naive moment would compare against the grace deadline in an unknown zone.
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidValue(field, "must be a datetime with a time zone", code="api_key.naive_datetime")
    return at


def _matches(candidate: str, expected: str | None) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and a caller's input may be anything.
    return expected is not None and hmac.compare_digest(str(candidate).encode(), expected.encode())


class ApiKey(Aggregate):
    TOPIC = "trafi.api_key.v1"

    @event("Created", topic="trafi.api_key.created.v1")
    def __init__(
        self, id: UUID, store_id: UUID, kind: str, name: str, scopes: tuple[str, ...], secret_hash: str,
        generation: int, created_by: str,
    ):
        self.store_id = store_id
        self.kind = kind
        self.name = name
        self.scopes = tuple(scopes)  # a list after a JSON round trip; a tuple either way
        self.secret_hash = secret_hash
        self.generation = generation
        self.created_by = created_by
        self.previous_hash: str | None = None
        self.previous_valid_until: str | None = None
        self.revoked = False
        self.revoked_by: str | None = None

    @classmethod
    def create(
        cls, id: UUID, *, store_id: UUID, kind: str, name: str, scopes: list[str] | tuple[str, ...],
        secret_hash: str, created_by: str,
    ) -> ApiKey:
        if kind not in KINDS:
            raise InvalidValue("kind", f"one of {', '.join(KINDS)}", code="api_key.invalid_kind")
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise InvalidValue("name", f"1 to {MAX_NAME_LENGTH} characters", code="api_key.invalid_name")
        scopes = check_scopes(list(scopes or ()))
        # A publishable key ships inside storefront code, so it must never carry admin rights;
        # a secret key with no scope would open nothing, which is always a mistake.
        if kind == "publishable" and scopes:
            raise InvalidValue("scopes", "publishable keys carry no scopes", code="api_key.publishable_scopes")
        if kind == "secret" and not scopes:
            raise InvalidValue("scopes", "a secret key needs at least one scope", code="api_key.missing_scopes")
        return cls(
            id=id, store_id=store_id, kind=kind, name=name, scopes=scopes, secret_hash=_secret_hash(secret_hash),
            generation=0, created_by=created_by,
        )

    @property
    def token_kind(self) -> str:
        """The kind prefix its tokens carry (domain/tokens.py)."""
        return "pk" if self.kind == "publishable" else "sk"

    @property
    def status(self) -> str:
        return "revoked" if self.revoked else "active"

    def rotate(
        self, new_secret_hash: str, grace_seconds: int, at: datetime, *, for_generation: int | None = None,
    ) -> None:
        """Replace the token; the current one keeps working for `grace_seconds` after `at`.

        `for_generation`: the generation `new_secret_hash` was derived for. A token is bound to
        its generation, so a hash computed before a concurrent rotation would open nothing
        once applied; naming the generation turns that into a conflict instead.
        """
        if self.revoked:
            raise ApiKeyRevoked()
        if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) \
                or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidValue(
                "grace_seconds", f"between 0 and {MAX_GRACE_SECONDS} (7 days)", code="api_key.invalid_grace"
            )
        _aware(at, "at")
        next_generation = self.generation + 1
        if for_generation is not None and for_generation != next_generation:
            raise Conflict(
                f"the new secret was derived for generation {for_generation}, but the key moves to {next_generation}",
                code="api_key.stale_generation",
            )
        if _matches(_secret_hash(new_secret_hash), self.secret_hash):
            raise InvalidValue(
                "secret_hash", "the new secret must differ from the current one", code="api_key.same_secret"
            )
        valid_until = (at + timedelta(seconds=grace_seconds)).isoformat() if grace_seconds else None
        self._rotated(
            generation=next_generation, secret_hash=new_secret_hash, previous_hash=self.secret_hash,
            previous_valid_until=valid_until,
        )

    @event("Rotated", topic="trafi.api_key.rotated.v1")
    def _rotated(self, generation: int, secret_hash: str, previous_hash: str, previous_valid_until: str | None) -> None:
        self.generation = generation
        self.secret_hash = secret_hash
        self.previous_hash = previous_hash
        self.previous_valid_until = previous_valid_until

    def revoke(self, by: str) -> None:
        """Revoking a revoked key changes nothing: the caller's intent already holds (a retry is safe)."""
        if not self.revoked:
            self._revoked(revoked_by=by)

    @event("Revoked", topic="trafi.api_key.revoked.v1")
    def _revoked(self, revoked_by: str) -> None:
        self.revoked = True
        self.revoked_by = revoked_by

    def accepts(self, token_hash: str, now: datetime) -> bool:
        _aware(now, "now")
        if self.revoked:
            return False
        if _matches(token_hash, self.secret_hash):
            return True
        if self.previous_valid_until is None or now >= datetime.fromisoformat(self.previous_valid_until):
            return False
        return _matches(token_hash, self.previous_hash)
