"""``/api/v1/users``: staff accounts, their roles and zones; admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from controller import audit
from controller.api.deps import AdminDep, SessionDep
from controller.api.schemas import ZoneName
from controller.auth import create_user, set_password
from controller.models import User

router = APIRouter(prefix="/api/v1/users", tags=["users"])

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


class UserPublic(BaseModel):
    """A member of staff (never the password hash)."""

    id: int
    username: str
    role: str
    roles: list[str]
    zones: list[str]
    disabled: bool
    created_at: datetime


def user_public(user: User) -> UserPublic:
    """The public view of a user."""
    return UserPublic(id=user.id, username=user.username, role=user.role,
                      roles=[r for r in user.roles] if user.roles else [user.role], zones=list(user.zones or []),
                      disabled=user.disabled, created_at=user.created_at)


def _get(session: SessionDep, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
    return user


@router.get("")
def list_users(session: SessionDep, _admin: AdminDep) -> list[UserPublic]:
    """Every account."""
    return [user_public(u) for u in session.scalars(select(User).order_by(User.id))]


@router.post("", status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, session: SessionDep, admin: AdminDep) -> UserPublic:
    """Creates an account with its roles (409 if the name is taken, 422 if the password is too weak)."""
    if session.scalar(select(User).where(User.username == body.username)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"user {body.username!r} already exists")
    try:
        user = create_user(session, body.username, body.password, body.role, list(body.roles), list(body.zones))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit.record(session, admin, "user.create", user.username, {"roles": user.roles, "zones": user.zones})
    return user_public(user)


@router.get("/{user_id}")
def get_user(user_id: int, session: SessionDep, _admin: AdminDep) -> UserPublic:
    """One account."""
    return user_public(_get(session, user_id))


@router.patch("/{user_id}")
def update_user(user_id: int, body: UserUpdate, session: SessionDep, admin: AdminDep) -> UserPublic:
    """Changes roles, zones or disables/enables an account; an admin cannot lock themselves out."""
    user = _get(session, user_id)
    if user.id == admin.id and (body.disabled or (body.roles is not None and "admin" not in body.roles)):
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot disable yourself or drop your own admin role")
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
    audit.record(session, admin, "user.update", user.username, changes)
    return user_public(user)


@router.post("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(user_id: int, body: PasswordReset, session: SessionDep, admin: AdminDep) -> None:
    """Sets a new password for the user (policy-checked); their console sessions end."""
    user = _get(session, user_id)
    try:
        set_password(session, user, body.password)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit.record(session, admin, "user.password_reset", user.username)
