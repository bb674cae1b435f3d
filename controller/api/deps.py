"""Dependencies shared by the routers: the controller, a database session, the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from controller.auth import device_for_token, user_for_token
from controller.models import Device, User
from controller.runtime import Controller

_bearer = HTTPBearer(auto_error=False)


def get_controller(request: Request) -> Controller:
    """The running controller."""
    controller: Controller = request.app.state.controller
    return controller


ControllerDep = Annotated[Controller, Depends(get_controller)]


def get_session(controller: ControllerDep) -> Iterator[Session]:
    """A session committed when the request succeeds."""
    with controller.db.session() as session:
        yield session


# scope="function": commit before the response goes out, so a client's next request sees its write
# and a failed commit is an error the client gets, not one that happens after it was told "ok".
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_UNAUTHORIZED = HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required",
                              headers={"WWW-Authenticate": "Bearer"})


def current_staff(session: SessionDep, credentials: CredentialsDep) -> User:
    """The member of staff the bearer token belongs to, or 401."""
    if credentials is None:
        raise _UNAUTHORIZED
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise _UNAUTHORIZED
    return user


StaffDep = Annotated[User, Depends(current_staff)]


def require_admin(user: StaffDep) -> User:
    """Only admins (finer roles arrive with the console issue)."""
    if user.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    return user


AdminDep = Annotated[User, Depends(require_admin)]


def require_roles(*allowed: str) -> Callable[[User], User]:
    """A dependency letting through admins and the given roles; anyone else gets 403."""
    permitted = frozenset(allowed) | {"admin"}

    def check(user: StaffDep) -> User:
        if user.role not in permitted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs one of the roles: {', '.join(sorted(permitted))}")
        return user

    return check


#: Security staff watch cameras, move PTZ and handle motion events.
SecurityDep = Annotated[User, Depends(require_roles("security"))]
#: Technicians provision and manage devices (agents, signs, cameras).
TechnicianDep = Annotated[User, Depends(require_roles("technician"))]
#: Officers compose and schedule content; approvers may too.
OfficerDep = Annotated[User, Depends(require_roles("officer", "approver"))]


def staff_or_device(session: SessionDep, credentials: CredentialsDep) -> User | Device:
    """A member of staff or an agent presenting its own device token, or 401."""
    if credentials is None:
        raise _UNAUTHORIZED
    who: User | Device | None = user_for_token(session, credentials.credentials) \
        or device_for_token(session, credentials.credentials)
    if who is None:
        raise _UNAUTHORIZED
    return who


StaffOrDeviceDep = Annotated[User | Device, Depends(staff_or_device)]
