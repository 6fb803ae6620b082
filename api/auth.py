"""Who is calling, for which store, allowed to do what — and how fast.

Credentials are bearer tokens (domain/tokens.py):
  Authorization: Bearer trafi_pk_…   publishable key: the storefront
  Authorization: Bearer trafi_sk_…   secret key: server-to-server, storefront and admin (by its scopes)
  Authorization: Bearer trafi_as_…   admin session: admin routes, by the admin user's role
  X-Customer-Session: trafi_cs_…     a signed-in customer, together with a storefront key

The token's id names the aggregate to compare against (an ApiKey or a Session), so a
check is one primary-key read of the write side — consistent the moment a key is
revoked. Verified credentials are cached for a few seconds per process; this process
forgets its cache when it revokes, rotates or signs out, other processes within
`CACHE_SECONDS`.

The store of every request comes from here and nowhere else (never from a body or a
path), which is what makes another store's resources indistinguishable from missing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Callable
from uuid import UUID

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiProblem
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from commands.application import TrafiApplication
from commands.context import StoreContext
from domain import tokens
from domain.admin_user import AdminUser
from domain.api_key import ApiKey
from domain.roles import ROLE_PERMISSIONS, Role
from domain.session import Session

CACHE_SECONDS = 5.0
USAGE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    store_id: UUID
    kind: str  # "publishable" | "secret" | "admin"
    subject_id: UUID  # the API key's id, or the admin user's
    permissions: frozenset[str]
    role: str | None = None  # admin sessions only

    @property
    def actor(self) -> str:
        return f"user:{self.subject_id}" if self.kind == "admin" else f"apikey:{self.subject_id}"

    @property
    def ctx(self) -> StoreContext:
        return StoreContext(store_id=self.store_id, actor=self.actor)


@dataclass(frozen=True, slots=True)
class CustomerSession:
    principal: Principal  # the storefront key the request came with
    session_id: UUID
    customer_id: UUID

    @property
    def ctx(self) -> StoreContext:
        return StoreContext(store_id=self.principal.store_id, actor=f"customer:{self.customer_id}")


def _invalid(reason: str = "the credential is unknown, expired or revoked") -> ApiProblem:
    return ApiProblem(401, "auth.invalid_token", reason, field="Authorization", headers={"WWW-Authenticate": "Bearer"})


class Authenticator:
    def __init__(self, app: TrafiApplication, *, record_usage: Callable[[UUID, UUID, datetime], None] | None = None):
        self.app = app
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._record_usage = record_usage
        self._usage_flushed: dict[UUID, float] = {}

    def forget(self) -> None:
        """Drop every cached credential (after a revocation, rotation, sign-out or role change)."""
        with self._lock:
            self._cache.clear()

    def cached_principal(self, token: str) -> Principal | None | bool:
        """The cached answer for `token`: a Principal, None (known bad), or False (not cached: verify)."""
        hit = self._cache.get(tokens.token_hash(token))
        if hit is None or hit[0] <= time.monotonic():
            return False
        found = hit[1]
        if isinstance(found, Principal) and found.kind != "admin":
            self._note_usage(found)
        return found if isinstance(found, Principal) else None

    def _cached(self, token: str, verify: Callable[[str], object]):
        digest = tokens.token_hash(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = verify(digest)
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, found)
        return found

    def principal(self, token: str) -> Principal | None:
        parsed = tokens.parse(token)
        if parsed is None or parsed[0] not in ("pk", "sk", "as"):
            return None
        kind, token_id = parsed
        found = self._cached(token, lambda digest: self._verify(kind, token_id, digest))
        if isinstance(found, Principal) and found.kind != "admin":
            self._note_usage(found)
        return found if isinstance(found, Principal) else None

    def customer_session(self, token: str, store_id: UUID) -> tuple[UUID, UUID] | None:
        parsed = tokens.parse(token)
        if parsed is None or parsed[0] != "cs":
            return None
        session_id = parsed[1]
        found = self._cached(token, lambda digest: self._verify_session(session_id, digest, "customer"))
        if found is None or found[0] != store_id:
            return None
        return session_id, found[1]

    def _now(self) -> datetime:
        return datetime.now(timezone.utc)

    def _verify(self, kind: str, token_id: UUID, digest: str) -> Principal | None:
        if kind == "as":
            session = self._verify_session(token_id, digest, "admin")
            if session is None:
                return None
            store_id, user_id = session
            user = self._load(user_id)
            if not isinstance(user, AdminUser) or user.store_id != store_id or not user.can_sign_in:
                return None
            return Principal(store_id, "admin", user_id, ROLE_PERMISSIONS[Role(user.role)], role=user.role)
        key = self._load(token_id)
        expected = "publishable" if kind == "pk" else "secret"
        if not isinstance(key, ApiKey) or key.kind != expected or not key.accepts(digest, self._now()):
            return None
        return Principal(key.store_id, key.kind, key.id, frozenset(key.scopes))

    def _verify_session(self, session_id: UUID, digest: str, subject_kind: str) -> tuple[UUID, UUID] | None:
        session = self._load(session_id)
        if not isinstance(session, Session) or session.subject_kind != subject_kind:
            return None
        if not session.accepts(digest, self._now()):
            return None
        return session.store_id, session.subject_id

    def _load(self, aggregate_id: UUID):
        found, _ = self.app.load_many([aggregate_id])
        return found.get(aggregate_id)

    def _note_usage(self, principal: Principal) -> None:
        # "Last used" is operational data, not history: written at most once a minute per key.
        if self._record_usage is None:
            return
        now = time.monotonic()
        if now - self._usage_flushed.get(principal.subject_id, -USAGE_EVERY_S) < USAGE_EVERY_S:
            return
        self._usage_flushed[principal.subject_id] = now
        # Off the request's path (which may be the event loop): a write, once a minute per key.
        threading.Thread(target=self._record_usage, args=(principal.store_id, principal.subject_id, self._now()),
                         name="trafi-key-usage", daemon=True).start()


# --- FastAPI dependencies ------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="An API key (`trafi_pk_…`, `trafi_sk_…`) or an admin session (`trafi_as_…`)")
_customer_header = APIKeyHeader(name="X-Customer-Session", auto_error=False,
                                description="A customer session token (`trafi_cs_…`) from sign-in")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _services(request: Request):
    return request.app.state.services


# The dependencies below are `async def` on purpose: FastAPI runs a plain `def` dependency in the
# thread pool, one hand-off per dependency per request. They do no I/O except on a cache miss,
# which goes to the thread pool explicitly.


def rate_limit(limiter: RateLimiter, key: str, rate) -> None:
    retry_after = limiter.check(key, rate)
    if retry_after is not None:
        raise ApiProblem(429, "rate_limited", f"too many requests; retry in {retry_after} s",
                         headers={"Retry-After": str(retry_after)})


async def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    services = _services(request)
    settings: ApiSettings = services.settings
    if credentials is None:
        rate_limit(services.limiter, f"anon:{client_address(request)}", settings.anonymous_rate)
        raise ApiProblem(401, "auth.missing_credentials", "send an API key or session as `Authorization: Bearer …`",
                         field="Authorization", headers={"WWW-Authenticate": "Bearer"})
    principal = services.auth.cached_principal(credentials.credentials)
    if principal is False:
        principal = await run_in_threadpool(services.auth.principal, credentials.credentials)
    if principal is None:
        rate_limit(services.limiter, f"anon:{client_address(request)}", settings.anonymous_rate)
        raise _invalid()
    if principal.kind == "publishable":
        # One publishable key serves every shopper of a store: limit each shopper, not the store.
        rate_limit(services.limiter, f"pk:{principal.subject_id}:{client_address(request)}", settings.storefront_rate)
    else:
        rate_limit(services.limiter, f"{principal.kind}:{principal.subject_id}", settings.admin_rate)
    request.state.store_id = str(principal.store_id)
    request.state.actor = principal.actor
    return principal


async def storefront(principal: Principal = Depends(authenticated)) -> Principal:
    if principal.kind == "admin":
        raise ApiProblem(403, "auth.wrong_key_kind", "storefront routes take a publishable or secret API key",
                         field="Authorization")
    return principal


async def signed_in_customer(
    request: Request, principal: Principal = Depends(storefront), token: str | None = Depends(_customer_header),
) -> CustomerSession:
    if not token:
        raise ApiProblem(401, "auth.missing_credentials", "sign in and send the session as `X-Customer-Session`",
                         field="X-Customer-Session")
    found = await run_in_threadpool(_services(request).auth.customer_session, token, principal.store_id)
    if found is None:
        raise ApiProblem(401, "auth.invalid_token", "the customer session is unknown, expired or signed out",
                         field="X-Customer-Session")
    session_id, customer_id = found
    request.state.actor = f"customer:{customer_id}"
    return CustomerSession(principal, session_id, customer_id)


async def optional_customer(request: Request, principal: Principal = Depends(storefront),
                            token: str | None = Depends(_customer_header)) -> CustomerSession | None:
    """The signed-in customer if a session is sent (checkout works for guests too)."""
    if not token:
        return None
    return await signed_in_customer(request, principal, token)


@lru_cache(maxsize=None)
def require(permission: str):
    """Dependency for an admin route: a secret key with the scope, or an admin whose role has it.

    Cached per permission, so that `admin_route(p)` and a handler's `Depends(require(p))`
    are the same dependency and FastAPI resolves it once per request.
    """

    async def check(principal: Principal = Depends(authenticated)) -> Principal:
        if principal.kind == "publishable":
            raise ApiProblem(403, "auth.wrong_key_kind", "admin routes take a secret key or an admin session",
                             field="Authorization")
        if permission not in principal.permissions:
            who = f"role {principal.role}" if principal.role else "this key's scopes"
            raise ApiProblem(403, "auth.forbidden", f"{who} do not include {permission}", field="Authorization")
        return principal

    check.permission = permission
    return check


def admin_route(permission: str) -> dict:
    """Keyword arguments for an admin route decorator: the check, and the permission in the OpenAPI document."""
    return {
        "dependencies": [Depends(require(permission))],
        "openapi_extra": {"x-permission": permission},
    }
