"""``/api/v1/auth``: login (a bearer token, or a console session cookie with its CSRF token), logout,
password change, and who am I."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from controller.accounts import audit_chain
from controller.accounts.auth import password_matches, set_password
from controller.accounts.reach import wards_of
from controller.api.deps import (
    SESSION_COOKIE,
    AccountDep,
    CredentialsDep,
    DatabaseDep,
    LoginThrottleDep,
    SessionDep,
)
from controller.api.errors import AUTHENTICATED, errors
from controller.api.sessions import PasswordChange, end_session, start_session
from controller.api.views import GrantPublic

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=AUTHENTICATED)


class LoginRequest(BaseModel):
    """Console or script login; ``cookie`` asks for a session cookie instead of relying on the token alone."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    cookie: bool = False


class LoginResult(BaseModel):
    """A session: its token (also the cookie's value when one was asked for) and the CSRF token to send."""

    token: str
    expires_at: datetime
    username: str
    role: str
    roles: list[str]
    zones: list[str]
    csrf_token: str | None = None


class Me(BaseModel):
    """The signed-in user."""

    id: int
    username: str
    role: str
    roles: list[str]
    #: Which role is held on which unit.
    grants: list[GrantPublic]
    #: The wards those roles cover: what this user sees.
    wards: list[str]
    zones: list[str]


@router.post("/login", responses=errors(429))
def login(body: LoginRequest, request: Request, response: Response, session: SessionDep,
          throttle: LoginThrottleDep, db: DatabaseDep) -> LoginResult:
    """Checks the password and returns a session token valid for 12 hours; throttled per name and address.

    With ``cookie: true`` the token is also set as an HttpOnly, SameSite=Strict cookie and a CSRF token is
    returned (and set as the readable ``lp_csrf`` cookie) for the ``X-CSRF-Token`` header.
    """
    started = start_session(request, response, session, throttle, db, body.username, body.password, body.cookie)
    user = started.user
    return LoginResult(token=started.token, expires_at=started.expires, username=user.username, role=user.role,
                       roles=sorted(user.role_set), zones=list(user.zones or []), csrf_token=started.csrf)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, session: SessionDep, user: AccountDep,
           credentials: CredentialsDep) -> None:
    """Revokes the token or session cookie this request was made with and clears the cookies."""
    token = credentials.credentials if credentials is not None else request.cookies.get(SESSION_COOKIE, "")
    end_session(response, session, user, token)


@router.get("/me")
def me(user: AccountDep, session: SessionDep) -> Me:
    """Who the token or cookie belongs to, their roles and where they hold them."""
    return Me(id=user.id, username=user.username, role=user.role, roles=sorted(user.role_set),
              grants=[GrantPublic(role=g.role, unit=g.unit_id) for g in user.grants],
              wards=sorted(wards_of(session, user)), zones=list(user.zones or []))


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, session: SessionDep, user: AccountDep) -> None:
    """Changes one's own password (the old one is required); every console session then ends."""
    if not password_matches(user, body.old_password):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the old password is wrong")
    try:
        set_password(session, user, body.new_password)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit_chain.record(session, user, "user.password", user.username)
