"""``/api/v1/auth``: login (a bearer token, or a console session cookie with its CSRF token), logout,
password change, and who am I."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from controller import audit
from controller.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    ControllerDep,
    CredentialsDep,
    SessionDep,
    StaffDep,
    csrf_for,
)
from controller.auth import issue_session_token, password_matches, revoke_token, set_password, verify_password
from controller.models import User
from controller.runtime import Controller

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

SESSION_LIFETIME = timedelta(hours=12)


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


class PasswordChange(BaseModel):
    """A user changing their own password."""

    model_config = ConfigDict(extra="forbid")

    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    """The signed-in user."""

    id: int
    username: str
    role: str
    roles: list[str]
    zones: list[str]


def _secure_cookies(request: Request) -> bool:
    """Secure cookies over https, or when the site says so (a TLS proxy in front: ``LP_COOKIE_SECURE=1``)."""
    forced = os.environ.get("LP_COOKIE_SECURE", "").strip().lower() in {"1", "true", "yes", "on"}
    return forced or request.url.scheme == "https"


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


@dataclass(frozen=True)
class StartedSession:
    """A successful login: the user, the session token and its expiry, and the CSRF token (cookie logins)."""

    user: User
    token: str
    expires: datetime
    csrf: str | None


def start_session(request: Request, response: Response, session: Session, controller: Controller,
                  username: str, password: str, cookie: bool) -> StartedSession:
    """Checks a password (throttled per name and address) and opens a 12-hour session; audited.

    With ``cookie`` the token is set as an HttpOnly, SameSite=Strict cookie and a CSRF token is set as the
    readable ``lp_csrf`` cookie. 429 while throttled, 401 for a wrong name or password. The API's login
    and the console's login form both come here.
    """
    keys = [f"user:{username.lower()}", f"ip:{_client(request)}"]
    wait = controller.login_throttle.retry_after(keys)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = verify_password(session, username, password)
    if user is None:
        controller.login_throttle.failed(keys)
        # The request's own session rolls back with the 401, so the failure is recorded in one of its own.
        with controller.db.session() as failures:
            audit.record(failures, None, "login.failed", username, {"client": _client(request)})
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    controller.login_throttle.succeeded(keys)
    token, expires = issue_session_token(session, user, SESSION_LIFETIME)
    audit.record(session, user, "login.ok", user.username, {"client": _client(request), "cookie": cookie})
    csrf: str | None = None
    if cookie:
        csrf = csrf_for(token)
        secure = _secure_cookies(request)
        max_age = int(SESSION_LIFETIME.total_seconds())
        response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", secure=secure, httponly=True,
                            samesite="strict")
        response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure, httponly=False,
                            samesite="strict")
    return StartedSession(user, token, expires, csrf)


def end_session(response: Response, session: Session, user: User, token: str) -> None:
    """Revokes a session token, clears the console cookies and records the logout."""
    revoke_token(session, token)
    audit.record(session, user, "logout", user.username)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")


@router.post("/login")
def login(body: LoginRequest, request: Request, response: Response, session: SessionDep,
          controller: ControllerDep) -> LoginResult:
    """Checks the password and returns a session token valid for 12 hours; throttled per name and address.

    With ``cookie: true`` the token is also set as an HttpOnly, SameSite=Strict cookie and a CSRF token is
    returned (and set as the readable ``lp_csrf`` cookie) for the ``X-CSRF-Token`` header.
    """
    started = start_session(request, response, session, controller, body.username, body.password, body.cookie)
    user = started.user
    return LoginResult(token=started.token, expires_at=started.expires, username=user.username, role=user.role,
                       roles=sorted(user.role_set), zones=list(user.zones or []), csrf_token=started.csrf)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, session: SessionDep, user: StaffDep,
           credentials: CredentialsDep) -> None:
    """Revokes the token or session cookie this request was made with and clears the cookies."""
    token = credentials.credentials if credentials is not None else request.cookies.get(SESSION_COOKIE, "")
    end_session(response, session, user, token)


@router.get("/me")
def me(user: StaffDep) -> Me:
    """Who the token or cookie belongs to."""
    return Me(id=user.id, username=user.username, role=user.role, roles=sorted(user.role_set),
              zones=list(user.zones or []))


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, session: SessionDep, user: StaffDep) -> None:
    """Changes one's own password (the old one is required); every console session then ends."""
    if not password_matches(user, body.old_password):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the old password is wrong")
    try:
        set_password(session, user, body.new_password)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit.record(session, user, "user.password", user.username)
