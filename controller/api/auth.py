"""``/api/v1/auth``: console login (username + password → an expiring token) and logout."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from controller.api.deps import ControllerDep, CredentialsDep, SessionDep, StaffDep
from controller.api.schemas import LoginRequest, LoginResult
from controller.auth import issue_session_token, revoke_token, verify_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

SESSION_LIFETIME = timedelta(hours=12)


@router.post("/login")
def login(body: LoginRequest, request: Request, session: SessionDep, controller: ControllerDep) -> LoginResult:
    """Checks the password and returns a session token valid for 12 hours; throttled per name and address."""
    keys = [f"user:{body.username.lower()}", f"ip:{request.client.host if request.client else '-'}"]
    wait = controller.login_throttle.retry_after(keys)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = verify_password(session, body.username, body.password)
    if user is None:
        controller.login_throttle.failed(keys)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    controller.login_throttle.succeeded(keys)
    token, expires = issue_session_token(session, user, SESSION_LIFETIME)
    return LoginResult(token=token, expires_at=expires, username=user.username, role=user.role)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: SessionDep, _user: StaffDep, credentials: CredentialsDep) -> None:
    """Revokes the token this request was made with."""
    assert isinstance(credentials, HTTPAuthorizationCredentials)
    revoke_token(session, credentials.credentials)
