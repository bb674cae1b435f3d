"""Staff accounts as admins manage them: create, change roles and zones, disable, reset a password.

The users API and the console's users page both call these, so the rules (names unique, the password
policy, an admin never locking themselves out) and the audit trail are the same whoever asks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.auth import create_user, set_password
from controller.api.schemas import ZoneName
from controller.storage.models import User

Role = Literal["admin", "approver", "officer", "security", "technician", "viewer"]


class UserCreate(BaseModel):
    """A new member of staff: ``roles`` (or ``role``, shorthand for one), optionally limited to zones."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Role | None = None
    roles: list[Role] = Field(default_factory=list, max_length=6)
    zones: list[ZoneName] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _some_role(self) -> UserCreate:
        if self.role is None and not self.roles:
            raise ValueError("give the user at least one role (roles: [...] or role: ...)")
        return self


class UserUpdate(BaseModel):
    """What an admin may change on an account; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] | None = Field(default=None, min_length=1, max_length=6)
    zones: list[ZoneName] | None = Field(default=None, max_length=200)
    disabled: bool | None = None


class PasswordReset(BaseModel):
    """An admin setting a new password for someone who lost theirs."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256)


class UserNotFound(LookupError):
    """No account with that id."""


class UserExists(Exception):
    """The username is taken."""


class PasswordRefused(ValueError):
    """The password does not meet the policy (the message says why)."""


class SelfLockout(Exception):
    """An admin disabling themselves or dropping their own admin role."""


def get_user(session: Session, user_id: int) -> User:
    """The account, or :class:`UserNotFound`."""
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user {user_id}")
    return user


def add_user(session: Session, body: UserCreate, admin: User) -> User:
    """Creates an account with its roles; :class:`UserExists` or :class:`PasswordRefused` otherwise."""
    if session.scalar(select(User).where(User.username == body.username)) is not None:
        raise UserExists(f"user {body.username!r} already exists")
    try:
        user = create_user(session, body.username, body.password, body.role, list(body.roles), list(body.zones))
    except ValueError as exc:
        raise PasswordRefused(str(exc)) from None
    audit_chain.record(session, admin, "user.create", user.username, {"roles": user.roles, "zones": user.zones})
    return user


def update_user(session: Session, user_id: int, body: UserUpdate, admin: User) -> User:
    """Changes roles, zones or disables/enables an account; :class:`SelfLockout` for an admin's own lock-out."""
    user = get_user(session, user_id)
    if user.id == admin.id and (body.disabled or (body.roles is not None and "admin" not in body.roles)):
        raise SelfLockout("you cannot disable yourself or drop your own admin role")
    changes: dict[str, object] = {}
    if body.roles is not None:
        user.set_roles(list(body.roles))
        changes["roles"] = user.roles
    if body.zones is not None:
        user.zones = list(body.zones)
        changes["zones"] = user.zones
    if body.disabled is not None:
        user.disabled = body.disabled
        changes["disabled"] = body.disabled
    audit_chain.record(session, admin, "user.update", user.username, changes)
    return user


def reset_password(session: Session, user_id: int, password: str, admin: User) -> User:
    """Sets a new password for the user (policy-checked); their console sessions end."""
    user = get_user(session, user_id)
    try:
        set_password(session, user, password)
    except ValueError as exc:
        raise PasswordRefused(str(exc)) from None
    audit_chain.record(session, admin, "user.password_reset", user.username)
    return user
