"""AdminUser: a person who runs a store from the dashboard, with one role (domain/roles.py).

The id is derived from the store and the e-mail (domain.ids.admin_user_id), so
inviting the same address twice collides instead of creating a second account.

Who may change whom:
* only an owner may make someone an owner or take the owner role away — an
  admin has every other permission, and could otherwise promote itself;
* an owner may not demote or deactivate themselves. The real invariant is
  "a store keeps at least one active owner", but checking it would mean loading
  every admin user of the store in each command. The narrower rule implies it:
  an owner can only lose the role through another owner, who stays one.
  (Two owners demoting each other at the same instant are two different
  aggregates and both succeed; that race is accepted — an operator bootstrap
  can appoint a new owner.)
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.customer import normalise_email
from domain.errors import Conflict, DomainError, InvalidValue
from domain.personal import PersonalData
from domain.roles import Role, check_role


class OwnerRequired(DomainError):
    code = "access.owner_required"

    def __init__(self) -> None:
        super().__init__("only an owner may grant or remove the owner role", field="role")


class LastOwnerGuard(Conflict):
    code = "access.last_owner_guard"

    def __init__(self, action: str) -> None:
        super().__init__(f"an owner cannot {action} themselves; another owner has to do it")


class AdminUserDeactivated(Conflict):
    code = "admin_user.deactivated"

    def __init__(self) -> None:
        super().__init__("this admin user has been deactivated")


def actor_of(user_id: UUID) -> str:
    """How an admin user appears as StoreContext.actor."""
    return f"user:{user_id}"


def admin_email(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidValue as error:
        raise InvalidValue("email", error.reason, code="admin_user.invalid_email") from None


class AdminUser(Aggregate):
    TOPIC = "trafi.admin_user.v1"

    @event("Created", topic="trafi.admin_user.created.v1")
    def __init__(self, id: UUID, store_id: UUID, email: PersonalData, password_hash: str, role: str, invited_by: str):
        self.store_id = store_id
        self.email = email
        self.password_hash = password_hash
        self.role = role
        self.invited_by = invited_by
        self.active = True

    @classmethod
    def invite(
        cls, id: UUID, *, store_id: UUID, email: str, password_hash: str, role: str, invited_by: str, by_role: str,
    ) -> AdminUser:
        """`by_role`: the inviter's role. The first owner of a store is invited by a bootstrap acting as owner."""
        granted = check_role(role)
        if granted is Role.OWNER and check_role(by_role, field="acting_role") is not Role.OWNER:
            raise OwnerRequired()
        return cls(
            id=id, store_id=store_id, email=PersonalData(id, admin_email(email)), password_hash=password_hash,
            role=granted.value, invited_by=invited_by,
        )

    @property
    def status(self) -> str:
        return "active" if self.active else "deactivated"

    @property
    def can_sign_in(self) -> bool:
        return self.active

    def _check_active(self) -> None:
        if not self.active:
            raise AdminUserDeactivated()

    def _is_self(self, actor: str) -> bool:
        return actor == actor_of(self.id)

    def change_role(self, new_role: str, by_actor: str, by_role: str) -> None:
        self._check_active()
        after = check_role(new_role)
        acting = check_role(by_role, field="acting_role")
        if after.value == self.role:
            raise InvalidValue("role", f"already has the role {self.role}", code="admin_user.same_role")
        if Role.OWNER in (after, Role(self.role)) and acting is not Role.OWNER:
            raise OwnerRequired()
        if self.role == Role.OWNER and self._is_self(by_actor):
            raise LastOwnerGuard("demote")
        self._role_changed(before=self.role, after=after.value, changed_by=by_actor)

    @event("RoleChanged", topic="trafi.admin_user.role_changed.v1")
    def _role_changed(self, before: str, after: str, changed_by: str) -> None:
        self.role = after

    def set_password(self, password_hash: str) -> None:
        self._check_active()
        self._password_set(password_hash=password_hash)

    @event("PasswordSet", topic="trafi.admin_user.password_set.v1")
    def _password_set(self, password_hash: str) -> None:
        self.password_hash = password_hash

    def deactivate(self, by_actor: str, by_role: str) -> None:
        """Deactivating a deactivated user changes nothing (a retry is safe)."""
        if not self.active:
            return
        acting = check_role(by_role, field="acting_role")
        if self.role == Role.OWNER:
            if acting is not Role.OWNER:
                raise OwnerRequired()  # deactivating an owner takes the role away as surely as a demotion
            if self._is_self(by_actor):
                raise LastOwnerGuard("deactivate")
        self._deactivated(deactivated_by=by_actor)

    @event("Deactivated", topic="trafi.admin_user.deactivated.v1")
    def _deactivated(self, deactivated_by: str) -> None:
        self.active = False
