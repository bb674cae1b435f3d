"""Signing in and out, the language switch, and one's own account (password change)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.accounts import audit_chain
from controller.accounts.auth import password_matches, set_password
from controller.api.deps import SESSION_COOKIE, DatabaseDep, LoginThrottleDep, SessionDep
from controller.api.sessions import PasswordChange, end_session, start_session
from controller.web.forms import field_errors
from controller.web.i18n import LANG_COOKIE, LANGUAGES, N_, gettext, speaking_to
from controller.web.session import ConsoleUserDep, console_user
from controller.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

_HOME = "/console/"


def safe_next(target: str | None, allow_login: bool = False) -> str:
    """Where to go next: a console path on this site, never another site (nor, after signing in, the
    login page again)."""
    if not target:
        return _HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or target.startswith("//") \
            or "\\" in target or (parts.path.startswith("/console/login") and not allow_login):
        return _HOME
    return target


class LoginForm(BaseModel):
    """The login form's fields (the API's login model, without the cookie switch)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@router.get("")
def console_root() -> RedirectResponse:
    """``/console`` → the dashboard."""
    return RedirectResponse(_HOME, status_code=307)


@router.get("/login")
def login_page(request: Request, session: SessionDep, next: str = "", changed: bool = False) -> Response:
    """The login form; someone already signed in goes straight on."""
    try:
        console_user(request, session)
    except Exception:
        notice = N_("Your password has been changed. Sign in with the new one.") if changed else None
        return render(request, "login.html", {"errors": {}, "username": "", "next": safe_next(next),
                                              "notice": notice})
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/login")
def login_submit(request: Request, session: SessionDep, throttle: LoginThrottleDep, db: DatabaseDep,
                 username: Annotated[str, Form(max_length=256)] = "",
                 password: Annotated[str, Form(max_length=1024)] = "",
                 next: Annotated[str, Form(max_length=2048)] = "") -> Response:
    """Checks the password (throttled, audited, as the API's login) and sets the session cookies."""
    target = safe_next(next)
    context = {"username": username[:64], "next": target, "notice": None}
    try:
        LoginForm(username=username, password=password)
    except ValidationError as exc:
        with speaking_to(request):
            errors = field_errors(exc)
        return render(request, "login.html", {**context, "errors": errors}, status_code=422)
    response = RedirectResponse(target, status_code=303)
    try:
        start_session(request, response, session, throttle, db, username, password, cookie=True)
    except HTTPException as exc:
        with speaking_to(request):
            if exc.status_code == 429:
                message = gettext("Too many failed sign-ins. Wait a few minutes and try again.")
            else:
                message = gettext("Wrong username or password.")
        return render(request, "login.html", {**context, "errors": {"__all__": [message]}},
                      status_code=exc.status_code, headers=dict(exc.headers or {}))
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: ConsoleUserDep) -> Response:
    """Ends this session (audited) and sends the browser to the login page."""
    response = Response(status_code=204, headers={"HX-Redirect": "/console/login"})
    end_session(response, session, user, request.cookies.get(SESSION_COOKIE, ""))
    return response


@router.get("/lang/{code}")
def choose_language(code: str, next: str = "") -> RedirectResponse:
    """Remembers the chosen language for a year and goes back to the page."""
    response = RedirectResponse(safe_next(next, allow_login=True), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, path="/", samesite="lax")
    return response


@router.get("/account")
def account(request: Request, user: ConsoleUserDep) -> Response:
    """Who I am, my roles and zones, and the password form."""
    return render(request, "account.html", {"roles": sorted(user.role_set), "errors": {}})


@router.post("/account/password")
def change_password(request: Request, session: SessionDep, user: ConsoleUserDep,
                    old_password: Annotated[str, Form(max_length=1024)] = "",
                    new_password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    """Changes my password; every session ends, so the browser goes to the login page."""
    with speaking_to(request):
        try:
            body = PasswordChange(old_password=old_password, new_password=new_password)
        except ValidationError as exc:
            return render(request, "_password_form.html", {"errors": field_errors(exc)}, status_code=422)
        if not password_matches(user, body.old_password):
            errors = {"old_password": [gettext("The current password is wrong.")]}
            return render(request, "_password_form.html", {"errors": errors}, status_code=422)
        try:
            set_password(session, user, body.new_password)
        except ValueError:
            errors = {"new_password": [gettext("At least 10 characters, and not the same as the username.")]}
            return render(request, "_password_form.html", {"errors": errors}, status_code=422)
    audit_chain.record(session, user, "user.password", user.username)
    return Response(status_code=204, headers={"HX-Redirect": "/console/login?changed=1"})
