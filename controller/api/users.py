"""``/api/v1/users``: staff accounts, the roles they hold on which units, and their zones; admins only, each
managing the accounts of the units they administer.

controller/accounts/users.py does the work.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from controller.accounts.users import (
    PasswordRefused,
    PasswordReset,
    SelfLockout,
    UserCreate,
    UserExists,
    UserNotFound,
    UserUpdate,
    visible_users,
)
from controller.accounts.users import (
    add_user as create_account,
)
from controller.accounts.users import (
    get_user as get_account,
)
from controller.accounts.users import (
    reset_password as reset_account_password,
)
from controller.accounts.users import (
    update_user as update_account,
)
from controller.api.deps import AdminDep, SessionDep
from controller.api.errors import AUTHENTICATED, errors
from controller.api.views import UserPublic, user_public
from controller.storage.models import User

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=AUTHENTICATED)


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, UserNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, UserExists | SelfLockout):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.get("")
def list_users(session: SessionDep, admin: AdminDep) -> list[UserPublic]:
    """The accounts holding a role on a unit the caller administers."""
    return [user_public(u) for u in session.scalars(visible_users(session, admin).order_by(User.id))]


@router.post("", responses=errors(404, 409), status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, session: SessionDep, admin: AdminDep) -> UserPublic:
    """Creates an account with its roles (409 if the name is taken, 422 if the password is too weak)."""
    try:
        return user_public(create_account(session, body, admin))
    except (UserExists, PasswordRefused) as exc:
        raise _refused(exc) from None


@router.get("/{user_id}", responses=errors(404))
def get_user(user_id: int, session: SessionDep, admin: AdminDep) -> UserPublic:
    """One account (404 for one only other units' admins manage)."""
    try:
        return user_public(get_account(session, user_id, admin))
    except UserNotFound as exc:
        raise _refused(exc) from None


@router.patch("/{user_id}", responses=errors(404, 409))
def update_user(user_id: int, body: UserUpdate, session: SessionDep, admin: AdminDep) -> UserPublic:
    """Changes roles, zones or disables/enables an account; an admin cannot lock themselves out."""
    try:
        return user_public(update_account(session, user_id, body, admin))
    except (UserNotFound, SelfLockout) as exc:
        raise _refused(exc) from None


@router.post("/{user_id}/password", responses=errors(404), status_code=status.HTTP_204_NO_CONTENT)
def reset_password(user_id: int, body: PasswordReset, session: SessionDep, admin: AdminDep) -> None:
    """Sets a new password for the user (policy-checked); their console sessions end."""
    try:
        reset_account_password(session, user_id, body.password, admin)
    except (UserNotFound, PasswordRefused) as exc:
        raise _refused(exc) from None
