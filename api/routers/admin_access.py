"""Admin access: API keys, admin users and their roles, admin sessions (read model `access_list`).

Tokens are derived, never stored (domain/tokens.py): the route picks the id, sends
only the token's hash, and derives the token again from the command's result (id
and generation) for the response — so an idempotent replay shows the same token
while the event log never holds one. A token is shown in that one response only.

Who may hand out what:
* a credential cannot create a secret key with scopes it lacks itself, nor rotate
  a key (and so receive its new token) whose scopes it lacks, nor grant a role
  with permissions it lacks: 403 `auth.scope_escalation`. Revoking or
  deactivating takes rights away, so `keys:manage` / `users:manage` suffice;
* a secret key acts with the role "admin" in the domain's owner rules: only an
  admin *session* of an owner may grant, remove or deactivate the owner role
  (403 `access.owner_required` otherwise).

Revocation, rotation, role changes, deactivation and sign-out take effect in this
process on the very next request (`svc.auth.forget()`); other API processes drop
their cached credentials within `api.auth.CACHE_SECONDS` (5 s).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from api.auth import Principal, _bearer, client_address, rate_limit, admin_route, authenticated, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import KEY_ID, USER_ID, example, with_examples
from api.problems import STATUS_BY_CODE, ApiProblem
from api.services import Services, services
from commands.admin_users import ChangeAdminRole, CreateAdminUser, DeactivateAdminUser
from commands.api_keys import CreateApiKey, RevokeApiKey, RotateApiKey
from commands.context import StoreContext
from commands.sessions import SignInAdmin, SignOut
from domain import ids, tokens
from domain.api_key import MAX_GRACE_SECONDS, MAX_NAME_LENGTH, ApiKey
from domain.errors import NotFound
from domain.roles import PERMISSIONS, ROLE_PERMISSIONS, Role, check_role
from queries.access import AdminUserSummary, ApiKeySummary, RoleChange
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/admin", tags=["admin: access"])

KeyId = Annotated[UUID, Path(description="The API key's id (`key_id` from its creation or the list)")]
UserId = Annotated[UUID, Path(description="The admin user's id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]

# Names and e-mails end up in read-model text columns, which cannot hold NUL (PostgreSQL) and
# should not hold other control characters either.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
TOKEN_KINDS = {"publishable": "pk", "secret": "sk"}
SESSION_TOKEN_EXAMPLE = "trafi_as_9b2e4c1d0a3f4e5d8c7b6a5f4e3d2c1b" + "0" * 40
SECRET_TOKEN_EXAMPLE = "trafi_sk_" + KEY_ID.replace("-", "") + "7f" * 20

KEY_EXAMPLE = {
    "key_id": KEY_ID, "kind": "secret", "name": "ERP sync", "scopes": ["orders:read", "stock:write"],
    "generation": 0, "status": "active", "created_at": "2026-11-21T10:15:00Z", "rotated_at": None,
    "revoked_at": None, "created_by": f"user:{USER_ID}", "last_used_at": "2026-11-21T11:02:13Z",
}
USER_EXAMPLE = {
    "user_id": USER_ID, "email": "ops@example.com", "role": "operator", "status": "active",
    "created_at": "2026-11-21T10:15:00Z", "updated_at": "2026-11-21T10:15:00Z",
}
ROLE_CHANGE_EXAMPLE = {
    "user_id": USER_ID, "version": 2, "before": "operator", "after": "viewer",
    "changed_by": "user:5a4b3c2d-1e0f-5a9b-8c7d-6e5f4a3b2c1d", "changed_at": "2026-11-21T12:00:00Z",
}



def _scope_escalation(reason: str, field: str) -> ApiProblem:
    return ApiProblem(STATUS_BY_CODE["auth.scope_escalation"], "auth.scope_escalation", reason, field=field)


def _check_within(principal: Principal, permissions, what: str, field: str) -> None:
    beyond = sorted((set(permissions) & set(PERMISSIONS)) - principal.permissions)  # unknown: the domain's 422
    if beyond:
        raise _scope_escalation(f"{what} would carry {', '.join(beyond)}, which this credential does not have", field)


# --- API keys ----------------------------------------------------------------------------------


class ApiKeyList(BaseModel):
    items: list[ApiKeySummary]


class NewApiKey(BaseModel):
    model_config = with_examples(
        {"kind": "secret", "name": "ERP sync", "scopes": ["orders:read", "stock:write"]},
        {"kind": "publishable", "name": "storefront", "scopes": []},
    )
    kind: Literal["publishable", "secret"] = Field(
        description="publishable: storefront routes only, no scopes; secret: admin routes by its scopes")
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE)
    scopes: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=len(PERMISSIONS),
        description="Permissions (see `x-permission`) for a secret key, none of them beyond the caller's own",
    )


class ApiKeyIssued(BaseModel):
    model_config = with_examples({"key_id": KEY_ID, "kind": "secret", "name": "ERP sync",
                              "scopes": ["orders:read", "stock:write"], "generation": 0, "status": "active",
                              "token": SECRET_TOKEN_EXAMPLE})
    key_id: UUID
    kind: str
    name: str
    scopes: list[str]
    generation: int
    status: str
    token: str = Field(description="The key's token. Shown in this response only: store it now")


class RotateRequest(BaseModel):
    model_config = with_examples({"grace_seconds": 3600}, {"grace_seconds": 0})
    grace_seconds: int = Field(
        default=0, ge=0, le=MAX_GRACE_SECONDS,
        description="How long the current token keeps working beside the new one (0: it stops at once)",
    )


class ApiKeyRotated(BaseModel):
    model_config = with_examples({"key_id": KEY_ID, "kind": "secret", "generation": 1, "status": "active",
                              "previous_valid_until": "2026-11-21T13:00:00Z", "token": SECRET_TOKEN_EXAMPLE})
    key_id: UUID
    kind: str
    generation: int
    status: str
    previous_valid_until: datetime | None = Field(description="Until when the previous token still works")
    token: str = Field(description="The new token. Shown in this response only: store it now")


class ApiKeyState(BaseModel):
    model_config = with_examples({"key_id": KEY_ID, "kind": "secret", "generation": 1, "status": "revoked"})
    key_id: UUID
    kind: str
    generation: int
    status: str


def _token_of(svc: Services, data: dict) -> str:
    return svc.token(TOKEN_KINDS[data["kind"]], UUID(data["key_id"]), data["generation"])


@router.get("/api-keys", summary="List the store's API keys (never their tokens)", response_model=ApiKeyList,
            responses=example({"items": [KEY_EXAMPLE]}), **admin_route("keys:manage"))
def list_api_keys(principal: Principal = Depends(require("keys:manage")), svc: Services = Depends(services),
                  min_position: MinPosition = None):
    return {"items": svc.queries.access.list_api_keys(principal.ctx, min_position=min_position)}


@router.get("/api-keys/{key_id}", summary="One API key (never its token)", response_model=ApiKeySummary,
            responses=example(KEY_EXAMPLE), **admin_route("keys:manage"))
def get_api_key(key_id: KeyId, principal: Principal = Depends(require("keys:manage")),
                svc: Services = Depends(services), min_position: MinPosition = None):
    return svc.queries.access.get_api_key(principal.ctx, key_id, min_position=min_position)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyIssued,
             summary="Create an API key; the response holds its token, shown once", **admin_route("keys:manage"))
def create_api_key(body: NewApiKey, principal: Principal = Depends(require("keys:manage")),
                   svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    if body.kind == "secret":
        _check_within(principal, body.scopes, "the key", "scopes")
    key_id = uuid4()
    token = svc.token(TOKEN_KINDS[body.kind], key_id, 0)
    command = CreateApiKey(key_id=key_id, kind=body.kind, name=body.name, scopes=tuple(body.scopes),
                           secret_hash=tokens.token_hash(token))
    data = gateway.run(command, principal.ctx, payload=body).data
    return {**data, "token": _token_of(svc, data)}


@router.post("/api-keys/{key_id}/rotate", response_model=ApiKeyRotated, **admin_route("keys:manage"),
             summary="Rotate an API key: a new token; the current one works on for `grace_seconds`")
def rotate_api_key(key_id: KeyId, body: RotateRequest, principal: Principal = Depends(require("keys:manage")),
                   svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    # The token is bound to the generation it is derived for, so the route needs the current one:
    # from the write side, not a read model that may lag. A rotation racing this one makes the
    # command fail with 409 api_key.stale_generation instead of installing a token nobody has.
    found, _ = svc.app.load_many([key_id])
    key = found.get(key_id)
    if not isinstance(key, ApiKey) or key.store_id != principal.store_id:
        raise NotFound("api_key", key_id)
    _check_within(principal, key.scopes, "the rotated key's token", "key_id")
    generation = key.generation + 1
    token = svc.token(key.token_kind, key_id, generation)
    command = RotateApiKey(key_id=key_id, secret_hash=tokens.token_hash(token), generation=generation,
                           grace_seconds=body.grace_seconds)
    data = gateway.run(command, principal.ctx, payload=body).data
    svc.auth.forget()
    return {**data, "token": _token_of(svc, data)}


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyState, **admin_route("keys:manage"),
             summary="Revoke an API key: refused from the next request on (revoking twice is not an error)")
def revoke_api_key(key_id: KeyId, principal: Principal = Depends(require("keys:manage")),
                   svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    data = gateway.run(RevokeApiKey(key_id=key_id), principal.ctx).data
    svc.auth.forget()
    return data


# --- admin users and roles ---------------------------------------------------------------------


class AdminUserList(BaseModel):
    items: list[AdminUserSummary]


RoleName = Annotated[str, Field(min_length=1, max_length=40, description=f"One of: {', '.join(Role)}")]


class NewAdminUser(BaseModel):
    model_config = with_examples({"email": "ops@example.com", "password": "a long passphrase", "role": "operator"})
    email: str = Field(min_length=3, max_length=254, pattern=PRINTABLE)
    password: str = Field(min_length=1, max_length=1024, description="At least 10 characters")
    role: RoleName


class RoleRequest(BaseModel):
    model_config = with_examples({"role": "viewer"})
    role: RoleName


class AdminUserState(BaseModel):
    model_config = with_examples({"user_id": USER_ID, "role": "operator", "status": "active"})
    user_id: UUID
    role: str
    status: str


class AdminRoleChanged(BaseModel):
    model_config = with_examples({"user_id": USER_ID, "role": "viewer", "previous_role": "operator", "status": "active"})
    user_id: UUID
    role: str
    previous_role: str
    status: str


def _acting_role(principal: Principal) -> str:
    # A secret key has no role. It acts as "admin": whatever its scopes allow, but never the
    # owner-only moves, so that no key (a leak away from anyone) can create or remove an owner.
    return principal.role if principal.kind == "admin" else Role.ADMIN.value


def _check_grant(principal: Principal, role: str) -> None:
    _check_within(principal, ROLE_PERMISSIONS[check_role(role)], f"the role {role}", "role")


@router.get("/users", summary="List the store's admin users", response_model=AdminUserList,
            responses=example({"items": [USER_EXAMPLE]}), **admin_route("users:manage"))
def list_admin_users(principal: Principal = Depends(require("users:manage")), svc: Services = Depends(services),
                     min_position: MinPosition = None):
    return {"items": svc.queries.access.list_admin_users(principal.ctx, min_position=min_position)}


@router.get("/users/{user_id}", summary="One admin user", response_model=AdminUserSummary,
            responses=example(USER_EXAMPLE), **admin_route("users:manage"))
def get_admin_user(user_id: UserId, principal: Principal = Depends(require("users:manage")),
                   svc: Services = Depends(services), min_position: MinPosition = None):
    return svc.queries.access.get_admin_user(principal.ctx, user_id, min_position=min_position)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=AdminUserState,
             summary="Add an admin user with a role (only an owner's session may create an owner)",
             **admin_route("users:manage"))
def create_admin_user(body: NewAdminUser, principal: Principal = Depends(require("users:manage")),
                      gateway: CommandGateway = Depends(command_gateway)):
    _check_grant(principal, body.role)
    command = CreateAdminUser(email=body.email, password=body.password, role=body.role,
                              acting_role=_acting_role(principal))
    return gateway.run(command, principal.ctx, payload=body).data


@router.put("/users/{user_id}/role", response_model=AdminRoleChanged, **admin_route("users:manage"),
            summary="Change an admin user's role (only an owner's session may grant or remove owner)")
def change_admin_role(user_id: UserId, body: RoleRequest, principal: Principal = Depends(require("users:manage")),
                      svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    _check_grant(principal, body.role)
    command = ChangeAdminRole(user_id=user_id, role=body.role, acting_role=_acting_role(principal))
    data = gateway.run(command, principal.ctx, payload=body).data
    svc.auth.forget()  # the user's sessions carry the old role's permissions in the cache
    return data


@router.post("/users/{user_id}/deactivate", response_model=AdminUserState, **admin_route("users:manage"),
             summary="Deactivate an admin user: their sessions are refused from the next request on")
def deactivate_admin_user(user_id: UserId, principal: Principal = Depends(require("users:manage")),
                          svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    command = DeactivateAdminUser(user_id=user_id, acting_role=_acting_role(principal))
    data = gateway.run(command, principal.ctx).data
    svc.auth.forget()
    return data


@router.get("/role-changes", summary="Who changed whose role, when, from what to what (newest first)",
            response_model=Page[RoleChange], responses=example({"items": [ROLE_CHANGE_EXAMPLE], "next_cursor": None}),
            **admin_route("audit:read"))
def role_changes(
    principal: Principal = Depends(require("audit:read")), svc: Services = Depends(services),
    user_id: Annotated[UUID | None, Query(description="Only this admin user's changes")] = None,
    limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None, min_position: MinPosition = None,
):
    return svc.queries.access.role_changes(principal.ctx, user_id, limit=limit, cursor=cursor,
                                           min_position=min_position)


# --- admin sessions ----------------------------------------------------------------------------
# Sign-in needs no credential (x-permission "none"); "who am I" and sign-out need any admin
# credential, whatever its permissions (x-permission "any"): no single permission is held by
# every role, and a person must always be able to see who they are and to sign out.


def any_admin(principal: Principal = Depends(authenticated)) -> Principal:
    if principal.kind == "publishable":
        raise ApiProblem(403, "auth.wrong_key_kind", "admin routes take a secret key or an admin session",
                         field="Authorization")
    return principal


def admin_session(principal: Principal = Depends(any_admin)) -> Principal:
    if principal.kind != "admin":
        raise ApiProblem(403, "auth.wrong_key_kind", "only an admin session can be signed out; revoke a key instead",
                         field="Authorization")
    return principal


ANY_ADMIN = {"dependencies": [Depends(any_admin)], "openapi_extra": {"x-permission": "any"}}


class SignInRequest(BaseModel):
    model_config = with_examples({"store": "my-shop", "email": "owner@example.com", "password": "a long passphrase"})
    store: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="The store's slug")
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class AdminSessionStarted(BaseModel):
    model_config = with_examples({"session_token": SESSION_TOKEN_EXAMPLE,
                              "session_id": "9b2e4c1d-0a3f-4e5d-8c7b-6a5f4e3d2c1b", "user_id": USER_ID,
                              "expires_at": "2026-11-21T22:15:00Z"})
    session_token: str = Field(description="Send as `Authorization: Bearer …`. Shown in this response only")
    session_id: UUID
    user_id: UUID
    expires_at: datetime


class SessionEnded(BaseModel):
    model_config = with_examples({"session_id": "9b2e4c1d-0a3f-4e5d-8c7b-6a5f4e3d2c1b", "ended": True})
    session_id: UUID
    ended: bool


class Me(BaseModel):
    model_config = with_examples(
        {"store_id": "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f", "kind": "admin", "user_id": USER_ID, "key_id": None,
         "role": "operator", "permissions": ["catalog:read", "orders:read"]},
    )
    store_id: UUID
    kind: str = Field(description="admin (a signed-in admin user) or secret (an API key)")
    user_id: UUID | None
    key_id: UUID | None
    role: str | None = Field(description="The admin user's role; none for a key (its `permissions` are its scopes)")
    permissions: list[str]


@router.post(
    "/sessions", status_code=status.HTTP_201_CREATED, response_model=AdminSessionStarted,
    summary="Sign in as an admin user of a store (no credential needed)",
    description="Every attempt counts against the client address's anonymous rate limit (429 beyond it), "
                "checked before the password is: a correct guess past the limit is refused like any other. "
                "Wrong store, e-mail or password all answer 401 `auth.invalid_credentials`.",
    openapi_extra={"x-permission": "none"},
)
def sign_in(body: SignInRequest, request: Request, svc: Services = Depends(services),
            gateway: CommandGateway = Depends(command_gateway)):
    rate_limit(svc.limiter, f"anon:{client_address(request)}", svc.settings.anonymous_rate)
    session_id = uuid4()
    token = svc.token("as", session_id)
    ctx = StoreContext(store_id=ids.store_id(body.store), actor="anonymous")
    command = SignInAdmin(email=body.email, password=body.password, session_id=session_id,
                          token_hash=tokens.token_hash(token))
    data = gateway.run(command, ctx, payload=body).data
    return {"session_token": svc.token("as", UUID(data["session_id"])), "session_id": data["session_id"],
            "user_id": data["subject_id"], "expires_at": data["expires_at"]}


@router.delete("/sessions/current", response_model=SessionEnded, summary="Sign out: end the admin session sent",
               dependencies=[Depends(admin_session)], openapi_extra={"x-permission": "any"})
def sign_out(principal: Principal = Depends(admin_session),
             credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
             svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    _, session_id = tokens.parse(credentials.credentials)  # an admin principal came from a well-formed "as" token
    data = gateway.run(SignOut(session_id=session_id), principal.ctx).data
    svc.auth.forget()
    return data


@router.get("/me", summary="Who is calling: the admin user or key, role and permissions", response_model=Me,
            **ANY_ADMIN)
def me(principal: Principal = Depends(any_admin)):
    is_user = principal.kind == "admin"
    return Me(store_id=principal.store_id, kind=principal.kind, user_id=principal.subject_id if is_user else None,
              key_id=None if is_user else principal.subject_id, role=principal.role,
              permissions=sorted(principal.permissions))
