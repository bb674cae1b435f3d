"""``/api/v1/users``: staff accounts, the roles they hold on which units, and their zones; admins only, each
managing the accounts of the units they administer.

controller/accounts/users.py does the work.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from controller.accounts.users import (
    PasswordRefused,
    PasswordReset,
    SelfLockout,
    TokenCreate,
    TokenNotFound,
    UserCreate,
    UserExists,
    UserNotFound,
    UserUpdate,
    issue_script_token,
    revoke_script_token,
    script_tokens,
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
from controller.storage.models import ApiToken, User

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=AUTHENTICATED)


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, UserNotFound | TokenNotFound):
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


class ScriptTokenPublic(BaseModel):
    """A script token of an account, without the token (only its hash is kept)."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


class ScriptTokenIssued(ScriptTokenPublic):
    """A new script token: ``token`` is shown this once; send it as ``Authorization: Bearer …``."""

    token: str


def _token_public(row: ApiToken) -> ScriptTokenPublic:
    return ScriptTokenPublic(id=row.id, name=row.name, created_at=row.created_at, last_used_at=row.last_used_at)


@router.get("/{user_id}/tokens", responses=errors(404, e404="no such account among the caller's"))
def list_tokens(user_id: int, session: SessionDep, admin: AdminDep) -> list[ScriptTokenPublic]:
    """The account's script tokens (never expiring, for machines such as the province's source system)."""
    try:
        return [_token_public(t) for t in script_tokens(session, user_id, admin)]
    except UserNotFound as exc:
        raise _refused(exc) from None


@router.post("/{user_id}/tokens", status_code=status.HTTP_201_CREATED,
             responses=errors(403, 404, e403="the account also holds roles beyond the caller's units",
                              e404="no such account among the caller's"))
def issue_token(user_id: int, body: TokenCreate, session: SessionDep, admin: AdminDep) -> ScriptTokenIssued:
    """A long-lived bearer token for a machine's account (the province's source system): returned once, only
    its hash is stored. It works until revoked or the account is disabled; a password reset leaves it."""
    try:
        row, token = issue_script_token(session, user_id, body.name, admin)
    except UserNotFound as exc:
        raise _refused(exc) from None
    return ScriptTokenIssued(**_token_public(row).model_dump(), token=token)


@router.delete("/{user_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=errors(403, 404, e403="the account also holds roles beyond the caller's units",
                                e404="no such account among the caller's, or no such token on it"))
def revoke_token(user_id: int, token_id: int, session: SessionDep, admin: AdminDep) -> None:
    """Revokes one script token: it stops working at once."""
    try:
        revoke_script_token(session, user_id, token_id, admin)
    except (UserNotFound, TokenNotFound) as exc:
        raise _refused(exc) from None
