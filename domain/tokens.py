"""Bearer tokens (API keys, sessions, reset links) that are never stored.

A token is derived from the server's secret key and an id the server chose:
`trafi_<kind>_<id as 32 hex><40 hex of HMAC-SHA256(secret key, kind:id:generation)>`.
The id is what the token opens (an API key, a session, a customer), so one
lookup by id finds what to compare against; the generation changes on every
rotation (of a key) or request (of a reset link).
Only its SHA-256 is kept in events. Because the token can be derived again
from the id, an idempotent retry can return the very same token without the
event log ever holding it in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from uuid import UUID

KINDS = {
    "pk": "publishable API key",
    "sk": "secret API key",
    "as": "admin session",
    "cs": "customer session",
    "rt": "password reset",
}
_TOKEN = re.compile(r"^trafi_(pk|sk|as|cs|rt)_([0-9a-f]{32})([0-9a-f]{40})$")


def derive(secret_key: bytes, kind: str, token_id: UUID, generation: int = 0) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    mac = hmac.new(secret_key, f"{kind}:{token_id}:{generation}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"trafi_{kind}_{token_id.hex}{mac}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(token: str) -> tuple[str, UUID] | None:
    """(kind, id) of a well-formed token, or None. Says nothing about validity: compare hashes for that."""
    match = _TOKEN.match(token or "")
    if match is None:
        return None
    return match.group(1), UUID(hex=match.group(2))
