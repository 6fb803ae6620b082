"""Access list: a store's API keys, admin users, the history of role changes, and per-store counts.

Serves the dashboard's "API keys" and "Team" pages and the audit of who granted
what. Tokens and password hashes are never projected: nothing here can open anything.

`api_key_usage` is beside these tables but not one of them: the API writes a
key's last use there (record_api_key_use), not the event log — a write per
request would flood history with noise. It is created here so that it always
exists for the join in queries/access.py, and deliberately left out of
`tables`: a rebuild drops and replaces what `tables` lists, and usage cannot
be rebuilt from events.
"""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from domain.admin_user import AdminUser
from domain.api_key import ApiKey
from domain.roles import Role
from domain.store import Store
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text
from projections.views import ViewStore


def _is_owner(role: str) -> int:
    return int(role == Role.OWNER)


class AccessList(Projection):
    name = "access_list"
    tables = ("rm_api_keys", "rm_admin_users", "rm_role_changes", "rm_access_stores")

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_api_keys ("
            "key_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, "
            "scopes TEXT NOT NULL, generation BIGINT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, "
            "rotated_at TEXT, revoked_at TEXT, created_by TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_api_keys_store ON rm_api_keys (store_id, created_at, key_id)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_admin_users ("
            "user_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, email TEXT NOT NULL, role TEXT NOT NULL, "
            "status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_admin_users_store ON rm_admin_users (store_id, email)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_role_changes ("
            "user_id TEXT NOT NULL, version BIGINT NOT NULL, store_id TEXT NOT NULL, before TEXT NOT NULL, "
            "after TEXT NOT NULL, changed_by TEXT NOT NULL, changed_at TEXT NOT NULL, PRIMARY KEY (user_id, version))"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_role_changes_store "
            "ON rm_role_changes (store_id, changed_at, user_id, version)"
        )
        # Counts a bootstrap and the dashboard need without scanning: has this store an owner at all?
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_access_stores ("
            "store_id TEXT PRIMARY KEY, active_owners INTEGER NOT NULL DEFAULT 0, "
            "active_users INTEGER NOT NULL DEFAULT 0, active_keys INTEGER NOT NULL DEFAULT 0)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS api_key_usage ("
            "store_id TEXT NOT NULL, key_id TEXT PRIMARY KEY, last_used_at TEXT NOT NULL)"
        )

    # --- stores ------------------------------------------------------------------------------
    @handles(Store.Created)
    def store_opened(self, tx, event) -> None:
        self._count(tx, str(event.originator_id))

    # --- API keys -----------------------------------------------------------------------------
    @handles(ApiKey.Created)
    def key_created(self, tx, event) -> None:
        tx.insert("rm_api_keys", {
            "key_id": str(event.originator_id), "store_id": str(event.store_id), "kind": event.kind,
            "name": event.name, "scopes": json.dumps(sorted(event.scopes)), "generation": event.generation,
            "status": "active", "created_at": utc_text(event.timestamp), "rotated_at": None, "revoked_at": None,
            "created_by": event.created_by, "version": event.originator_version,
        })
        self._count(tx, str(event.store_id), active_keys=1)

    @handles(ApiKey.Rotated)
    def key_rotated(self, tx, event) -> None:
        self._key(tx, event, generation=event.generation, rotated_at=utc_text(event.timestamp))

    @handles(ApiKey.Revoked)
    def key_revoked(self, tx, event) -> None:
        self._key(tx, event, status="revoked", revoked_at=utc_text(event.timestamp))
        store_id = tx.execute(
            "SELECT store_id FROM rm_api_keys WHERE key_id = %s", (str(event.originator_id),)
        ).fetchone()[0]
        self._count(tx, store_id, active_keys=-1)

    # --- admin users --------------------------------------------------------------------------
    @handles(AdminUser.Created)
    def user_created(self, tx, event) -> None:
        at = utc_text(event.timestamp)
        tx.insert("rm_admin_users", {
            "user_id": str(event.originator_id), "store_id": str(event.store_id),
            "email": str(event.email.value).lower(), "role": event.role, "status": "active",
            "created_at": at, "updated_at": at, "version": event.originator_version,
        })
        self._count(tx, str(event.store_id), active_users=1, active_owners=_is_owner(event.role))

    @handles(AdminUser.RoleChanged)
    def role_changed(self, tx, event) -> None:
        store_id = self._user_store(tx, event)
        tx.insert("rm_role_changes", {
            "user_id": str(event.originator_id), "version": event.originator_version, "store_id": store_id,
            "before": event.before, "after": event.after, "changed_by": event.changed_by,
            "changed_at": utc_text(event.timestamp),
        })
        self._user(tx, event, role=event.after)
        owners = _is_owner(event.after) - _is_owner(event.before)
        if owners:
            self._count(tx, store_id, active_owners=owners)

    @handles(AdminUser.PasswordSet)
    def password_set(self, tx, event) -> None:
        self._user(tx, event)

    @handles(AdminUser.Deactivated)
    def user_deactivated(self, tx, event) -> None:
        store_id, role = tx.execute(
            "SELECT store_id, role FROM rm_admin_users WHERE user_id = %s", (str(event.originator_id),)
        ).fetchone()
        self._user(tx, event, status="deactivated")
        self._count(tx, store_id, active_users=-1, active_owners=-_is_owner(role))

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _key(tx, event, **changes) -> None:
        tx.update(
            "rm_api_keys", {"key_id": str(event.originator_id)}, set={**changes, "version": event.originator_version}
        )

    @staticmethod
    def _user(tx, event, **changes) -> None:
        tx.update(
            "rm_admin_users", {"user_id": str(event.originator_id)},
            set={**changes, "updated_at": utc_text(event.timestamp), "version": event.originator_version},
        )

    @staticmethod
    def _user_store(tx, event) -> str:
        # Only the Created event names the store; later events of the stream find it here.
        return tx.execute(
            "SELECT store_id FROM rm_admin_users WHERE user_id = %s", (str(event.originator_id),)
        ).fetchone()[0]

    @staticmethod
    def _count(tx, store_id: str, **deltas: int) -> None:
        counts = {"active_owners": 0, "active_users": 0, "active_keys": 0}
        counts.update(deltas)
        tx.upsert("rm_access_stores", {"store_id": store_id}, add=counts)


def record_api_key_use(views: ViewStore, store_id: UUID, key_id: UUID, at: datetime) -> None:
    """Note that a key was used at `at` (the API calls this; throttling how often is its choice).

    A later moment never loses to an earlier one, so concurrent requests may record in any order.
    """
    with views.transaction() as tx:
        tx.execute(
            "INSERT INTO api_key_usage (store_id, key_id, last_used_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (key_id) DO UPDATE SET last_used_at = excluded.last_used_at "
            "WHERE excluded.last_used_at > api_key_usage.last_used_at",
            (str(store_id), str(key_id), utc_text(at)),
        )
