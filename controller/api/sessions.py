"""Staff sessions over HTTP: signing in (a session token, and for the console HttpOnly cookies with their CSRF
token), signing out, and the password-change body. The API's ``/api/v1/auth`` routes and the console's
login page both use these, so throttling, cookies and the audit trail are the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.auth import LoginThrottle, issue_session_token, revoke_token, verify_password
from controller.api.deps import CSRF_COOKIE, SESSION_COOKIE, csrf_for
from controller.storage.engine import Database
from controller.storage.models import User

SESSION_LIFETIME = timedelta(hours=12)


class PasswordChange(BaseModel):
    """A user changing their own password."""

    model_config = ConfigDict(extra="forbid")

    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


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


def start_session(request: Request, response: Response, session: Session, throttle: LoginThrottle, db: Database,
                  username: str, password: str, cookie: bool) -> StartedSession:
    """Checks a password (throttled per name and address) and opens a 12-hour session; audited.

    With ``cookie`` the token is set as an HttpOnly, SameSite=Strict cookie and a CSRF token is set as the
    readable ``lp_csrf`` cookie. 429 while throttled, 401 for a wrong name or password. The API's login
    and the console's login form both come here.
    """
    keys = [f"user:{username.lower()}", f"ip:{_client(request)}"]
    wait = throttle.retry_after(keys)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = verify_password(session, username, password)
    if user is None:
        throttle.failed(keys)
        # The request's own session rolls back with the 401, so the failure is recorded in one of its own.
        with db.session() as failures:
            audit_chain.record(failures, None, "login.failed", username, {"client": _client(request)})
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    throttle.succeeded(keys)
    token, expires = issue_session_token(session, user, SESSION_LIFETIME)
    audit_chain.record(session, user, "login.ok", user.username, {"client": _client(request), "cookie": cookie})
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
    audit_chain.record(session, user, "logout", user.username)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
