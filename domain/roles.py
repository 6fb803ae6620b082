"""Admin roles and what each may do: one table, read by the API on every admin route.

A permission is "<area>:<verb>". An admin route names exactly one permission; a
role either has it or the request is refused with 403. Secret API keys carry
scopes, which are permissions from the same list.
"""

from __future__ import annotations

from enum import StrEnum

from domain.errors import InvalidValue


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    RISK_MANAGER = "risk_manager"
    PRIVACY_MANAGER = "privacy_manager"


PERMISSIONS: dict[str, str] = {
    "catalog:read": "see products, variants and prices (with costs)",
    "catalog:write": "create and change products, variants, prices and costs",
    "stock:read": "see stock levels",
    "stock:write": "receive and adjust stock",
    "orders:read": "list and inspect orders",
    "orders:write": "mark orders paid, fulfilled and delivered",
    "orders:cancel": "cancel orders",
    "customers:read": "list and inspect customers",
    "customers:write": "change customer records (addresses)",
    "settings:read": "see store settings",
    "settings:write": "change currency, tax mode, shipping zones and rates",
    "keys:manage": "create, rotate and revoke API keys",
    "users:manage": "invite admin users, change roles, deactivate users",
    "audit:read": "replay history: state at a moment, event history, role changes",
    "dashboard:read": "see the sales dashboard",
    "autopilot:read": "see ChangeSets, their metrics, proofs and audit trail, guardrails and attribution",
    "autopilot:write": "draft and submit ChangeSets; set the store's guardrail policy",
    "autopilot:approve": "approve (or force-approve), reject, roll back and make ChangeSets permanent",
    "webhooks:read": "see webhook endpoints (never their secrets), deliveries and attempts",
    "webhooks:manage": "create, change, rotate, disable and delete webhook endpoints; replay deliveries",
}

_READ_ALL = {p for p in PERMISSIONS if p.endswith(":read")}

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.OWNER: frozenset(PERMISSIONS),
    Role.ADMIN: frozenset(PERMISSIONS),  # differs from owner only in who may grant or remove "owner"
    Role.OPERATOR: frozenset({
        "catalog:read", "catalog:write", "stock:read", "stock:write", "orders:read", "orders:write",
        "orders:cancel", "customers:read", "settings:read", "dashboard:read", "autopilot:read",
        # Operators see whether the 3PL got its orders; configuring where events (with customers'
        # personal data) are sent is owner/admin business, like API keys.
        "webhooks:read",
    }),
    Role.VIEWER: frozenset(_READ_ALL - {"audit:read"}),
    Role.RISK_MANAGER: frozenset({"orders:read", "orders:cancel", "customers:read", "audit:read", "dashboard:read"}),
    Role.PRIVACY_MANAGER: frozenset({"customers:read", "customers:write", "audit:read"}),
}


def check_role(role: str, field: str = "role") -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidValue(field, f"unknown role {role!r}; one of {', '.join(Role)}", code="access.unknown_role") from None


def check_scopes(scopes: list[str] | tuple[str, ...], field: str = "scopes") -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(PERMISSIONS))
    if unknown:
        raise InvalidValue(field, f"unknown scope(s) {', '.join(unknown)}", code="access.unknown_scope")
    return tuple(sorted(set(scopes)))


def can(role: Role | str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)]
