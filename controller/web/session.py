"""Who is using the console: the session cookie, its CSRF token, and the roles each page needs.

Console routes use these dependencies instead of the API's: a missing or expired session sends the
browser to the login page (htmx requests get ``HX-Redirect``) rather than a JSON 401, and a role the user
lacks gets the console's own 403 page in their language. The policies are declared the same way as the
API's (:func:`controller.api.deps.declare_roles`), so the role matrix test covers the console too.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from controller.accounts.auth import user_for_token
from controller.api.deps import (
    ANY_STAFF,
    CSRF_COOKIE,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    SessionDep,
    csrf_for,
    declare_roles,
)
from controller.storage.models import User


class LoginRequired(Exception):
    """No valid console session: the browser goes to the login page."""


class CsrfRejected(Exception):
    """A change without the session's CSRF token: refused with a page saying to reload."""


class RoleRequired(Exception):
    """The user lacks every role a page allows."""

    def __init__(self, roles: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(roles)))
        self.roles = roles


def console_user(request: Request, session: SessionDep) -> User:
    """The member of staff behind the console's session cookie; changes must carry the CSRF header.

    htmx sends the header on every request (``hx-headers`` on the page's body); a plain cross-site form
    cannot, and the cookie is SameSite=Strict besides.
    """
    token = request.cookies.get(SESSION_COOKIE, "")
    user = user_for_token(session, token) if token else None
    if user is None:
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        expected = csrf_for(token)
        if not sent or not (hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, expected)):
            raise CsrfRejected()
    request.state.user = _layout_copy(user)
    request.state.csrf_token = csrf_for(token)
    if not user.role_set & ANY_STAFF:
        # The upper level's source system has an API account, not a seat in the console.
        raise RoleRequired(ANY_STAFF)
    return user


def _layout_copy(user: User) -> User:
    """The user as the layout shows them, bound to no database session: an error in a route rolls the
    request's session back, which expires the loaded user, and the error page still needs the menu."""
    return User(id=user.id, username=user.username, role=user.role, roles=list(user.roles or ()),
                zones=list(user.zones or ()), disabled=user.disabled)


declare_roles(console_user, ANY_STAFF)
ConsoleUserDep = Annotated[User, Depends(console_user)]


def page_roles(*allowed: str) -> Callable[[User], User]:
    """A console dependency letting through admins and holders of any of ``allowed``."""
    permitted = frozenset(allowed) | {"admin"}

    def check(user: ConsoleUserDep) -> User:
        if not user.role_set & permitted:
            raise RoleRequired(permitted)
        return user

    declare_roles(check, permitted)
    return check


#: Officers compose and schedule; approvers may too.
ConsoleOfficerDep = Annotated[User, Depends(page_roles("officer", "approver"))]
#: Approvers approve what officers wrote.
ConsoleApproverDep = Annotated[User, Depends(page_roles("approver"))]
#: Security staff: cameras, PTZ, motion events.
ConsoleSecurityDep = Annotated[User, Depends(page_roles("security"))]
#: Technicians: devices and provisioning.
ConsoleTechnicianDep = Annotated[User, Depends(page_roles("technician"))]
#: Admins only: users and the audit log.
ConsoleAdminDep = Annotated[User, Depends(page_roles())]
