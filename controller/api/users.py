"""``/api/v1/users``: staff accounts (admins only; roles and the console come with the console issue)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from controller import audit
from controller.api.deps import AdminDep, SessionDep
from controller.api.schemas import UserCreate, UserPublic
from controller.auth import create_user
from controller.models import User

router = APIRouter(prefix="/api/v1/users", tags=["users"])


def user_public(user: User) -> UserPublic:
    """The public view of a user."""
    return UserPublic(id=user.id, username=user.username, role=user.role, disabled=user.disabled,
                      created_at=user.created_at)


@router.get("")
def list_users(session: SessionDep, _admin: AdminDep) -> list[UserPublic]:
    """Every account."""
    return [user_public(u) for u in session.scalars(select(User).order_by(User.id))]


@router.post("", status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, session: SessionDep, admin: AdminDep) -> UserPublic:
    """Creates an account with a role."""
    try:
        user = create_user(session, body.username, body.password, body.role)
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    audit.record(session, admin, "user.create", user.username, {"role": user.role})
    return user_public(user)
