"""Access: a store's API keys, admin users and role changes (read model `access_list`).

Keys and users are listed whole (a store has a handful of each), oldest first
for keys and by e-mail for users. Role changes are an audit trail that only
grows, so they come in keyset pages, newest first.
"""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from projections.read_models.timestamps import from_utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.pagination import DEFAULT_PAGE_SIZE, Page, check_limit, decode_cursor, page_of

KEY_COLUMNS = (
    "k.key_id, k.kind, k.name, k.scopes, k.generation, k.status, k.created_at, k.rotated_at, k.revoked_at, "
    "k.created_by, u.last_used_at"
)
USER_COLUMNS = "user_id, email, role, status, created_at, updated_at"


class ApiKeySummary(QueryModel):
    key_id: UUID
    kind: str  # publishable | secret
    name: str
    scopes: tuple[str, ...]
    generation: int
    status: str  # active | revoked
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    created_by: str
    last_used_at: datetime | None  # as recorded by the API; None if never used (or not recorded)


class AdminUserSummary(QueryModel):
    user_id: UUID
    email: str
    role: str
    status: str  # active | deactivated
    created_at: datetime
    updated_at: datetime


class RoleChange(QueryModel):
    user_id: UUID
    version: int  # of the change within the user's history
    before: str
    after: str
    changed_by: str
    changed_at: datetime


class AccessSummary(QueryModel):
    active_owners: int
    active_users: int
    active_keys: int


def _moment(text: str | None) -> datetime | None:
    return from_utc_text(text) if text else None


def _key(row: tuple) -> ApiKeySummary:
    key_id, kind, name, scopes, generation, status, created_at, rotated_at, revoked_at, created_by, last_used = row
    return ApiKeySummary(
        key_id=UUID(key_id), kind=kind, name=name, scopes=tuple(json.loads(scopes)), generation=generation,
        status=status, created_at=from_utc_text(created_at), rotated_at=_moment(rotated_at),
        revoked_at=_moment(revoked_at), created_by=created_by, last_used_at=_moment(last_used),
    )


def _user(row: tuple) -> AdminUserSummary:
    user_id, email, role, status, created_at, updated_at = row
    return AdminUserSummary(
        user_id=UUID(user_id), email=email, role=role, status=status, created_at=from_utc_text(created_at),
        updated_at=from_utc_text(updated_at),
    )


def _change(row: tuple) -> RoleChange:
    user_id, version, before, after, changed_by, changed_at = row
    return RoleChange(
        user_id=UUID(user_id), version=version, before=before, after=after, changed_by=changed_by,
        changed_at=from_utc_text(changed_at),
    )


def _change_sort_key(row: tuple) -> tuple[str, str, str]:
    return row[5], row[0], str(row[1])  # changed_at, user_id, version


class AccessQueries(ReadModelQueries):
    projection_name = "access_list"

    def list_api_keys(
        self, ctx: StoreContext, *, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> tuple[ApiKeySummary, ...]:
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {KEY_COLUMNS} FROM rm_api_keys k "
                "LEFT JOIN api_key_usage u ON u.key_id = k.key_id AND u.store_id = k.store_id "
                "WHERE k.store_id = %s ORDER BY k.created_at, k.key_id",
                (str(ctx.store_id),),
            ).fetchall()
        return tuple(_key(row) for row in rows)

    def get_api_key(
        self, ctx: StoreContext, key_id: UUID, *, min_position: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> ApiKeySummary:
        """NotFound when this store has no such key (another store's key is not revealed)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                f"SELECT {KEY_COLUMNS} FROM rm_api_keys k "
                "LEFT JOIN api_key_usage u ON u.key_id = k.key_id AND u.store_id = k.store_id "
                "WHERE k.key_id = %s AND k.store_id = %s",
                (str(key_id), str(ctx.store_id)),
            ).fetchone()
        if row is None:
            raise NotFound("api_key", key_id)
        return _key(row)

    def list_admin_users(
        self, ctx: StoreContext, *, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> tuple[AdminUserSummary, ...]:
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {USER_COLUMNS} FROM rm_admin_users WHERE store_id = %s ORDER BY email, user_id",
                (str(ctx.store_id),),
            ).fetchall()
        return tuple(_user(row) for row in rows)

    def get_admin_user(
        self, ctx: StoreContext, user_id: UUID, *, min_position: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> AdminUserSummary:
        """NotFound when this store has no such user (another store's user is not revealed)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                f"SELECT {USER_COLUMNS} FROM rm_admin_users WHERE user_id = %s AND store_id = %s",
                (str(user_id), str(ctx.store_id)),
            ).fetchone()
        if row is None:
            raise NotFound("admin_user", user_id)
        return _user(row)

    def role_changes(
        self, ctx: StoreContext, user_id: UUID | None = None, *, limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[RoleChange]:
        """Newest first; one user's when `user_id` is given (another store's user simply has none)."""
        limit = check_limit(limit)
        where, params = "store_id = %s", [str(ctx.store_id)]
        if user_id is not None:
            where += " AND user_id = %s"
            params.append(str(user_id))
        if cursor is not None:
            changed_at, after_user, version = decode_cursor(cursor, 3)
            if not version.isdigit():
                raise InvalidValue("cursor", "not a cursor of this list", code="query.invalid_cursor")
            where += (
                " AND (changed_at < %s OR (changed_at = %s AND (user_id < %s OR (user_id = %s AND version < %s))))"
            )
            params += [changed_at, changed_at, after_user, after_user, int(version)]
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                "SELECT user_id, version, before, after, changed_by, changed_at FROM rm_role_changes "
                f"WHERE {where} ORDER BY changed_at DESC, user_id DESC, version DESC LIMIT %s",
                (*params, limit + 1),
            ).fetchall()
        return page_of(rows, limit, _change_sort_key, _change)

    def store_access(
        self, ctx: StoreContext, *, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> AccessSummary:
        """How many active owners, admin users and API keys the store has (zeros for an unknown store)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                "SELECT active_owners, active_users, active_keys FROM rm_access_stores WHERE store_id = %s",
                (str(ctx.store_id),),
            ).fetchone()
        owners, users, keys = row or (0, 0, 0)
        return AccessSummary(active_owners=owners, active_users=users, active_keys=keys)
