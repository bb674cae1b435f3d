"""Users: staff accounts, their roles, the units those are held on, and zones — for admins of those units.

Creating, editing, disabling and resetting passwords call the API's own functions
(controller/api/users.py), so the password policy, the guard against an admin locking themselves out and
the audit records are the same as for scripts. Errors are shown under their field, in the user's language.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from pydantic import ValidationError

from controller.accounts.reach import unit_tree, units_of, wards_of
from controller.accounts.units import ward_names
from controller.accounts.users import (
    PasswordRefused,
    PasswordReset,
    SelfLockout,
    UserCreate,
    UserExists,
    UserNotFound,
    UserUpdate,
    add_user,
    get_user,
    reset_password,
    update_user,
    visible_users,
)
from controller.api.deps import SessionDep
from controller.api.views import UserPublic, user_public
from controller.storage.models import ROLES, WARD_KINDS, User
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.pages.devices import split_zones, zone_choices
from controller.web.session import ConsoleAdminDep
from controller.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

#: What each role may do, shown beside its checkbox (msgids).
ROLE_HINTS: dict[str, str] = {
    "admin": N_("Everything, including accounts and the audit log."),
    "approver": N_("Approves announcements and schedules before they go out."),
    "officer": N_("Writes announcements and schedules them."),
    "security": N_("Watches cameras, moves them and handles motion alerts."),
    "technician": N_("Installs and looks after devices."),
    "viewer": N_("Sees what plays and where; changes nothing."),
    "source": N_("An account for the province's or city's source system: it pushes items to wards and reads "
                 "back proof of play and the monthly figures through the API; no console."),
}
_PASSWORD_RULE = N_("At least 10 characters, and not the same as the username.")


def _users(session: SessionDep, admin: User) -> list[UserPublic]:
    return [user_public(u) for u in session.scalars(visible_users(session, admin).order_by(User.username))]


def _get(session: SessionDep, user_id: int, admin: User) -> User:
    try:
        return get_user(session, user_id, admin)
    except UserNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None


def _unit_context(session: SessionDep, admin: User) -> dict[str, Any]:
    """The units an admin may grant roles on (the form's choice) and every unit's name (the table's)."""
    administered = units_of(session, admin, ["admin"])
    names = ward_names(session)
    choices = sorted(administered, key=lambda u: (unit_tree(session).kind.get(u) in WARD_KINDS, names.get(u, u)))
    return {"unit_choices": [(u, names.get(u, u)) for u in choices], "unit_names": names}


def _role_errors(errors: dict[str, list[str]], roles: list[str]) -> dict[str, list[str]]:
    """The "at least one role" rule belongs under the roles, not at the top of the form."""
    if not roles:
        errors.pop("__all__", None)
        errors["roles"] = [gettext("Choose at least one role.")]
    return errors


def _form_context(session: SessionDep, admin: User, values: dict[str, Any] | None = None,
                  errors: dict[str, list[str]] | None = None, created: str | None = None) -> dict[str, Any]:
    chosen = list((values or {}).get("zones", []))
    return {"values": values or {"username": "", "roles": [], "unit": "", "zones": [], "zones_extra": ""},
            "errors": errors or {}, "roles_all": ROLES, "role_hints": ROLE_HINTS, "created": created,
            "zone_choices": zone_choices(session, wards_of(session, admin, ["admin"]), chosen),
            **_unit_context(session, admin)}


@router.get("/users")
def users_page(request: Request, session: SessionDep, admin: ConsoleAdminDep) -> Response:
    """The accounts of the units the admin administers, and the form creating one."""
    return render(request, "users/index.html", {"users": _users(session, admin), **_form_context(session, admin)})


@router.get("/users/table")
def users_table(request: Request, session: SessionDep, admin: ConsoleAdminDep) -> Response:
    """The accounts table alone (fetched again after a change)."""
    return render(request, "users/_table.html", {"users": _users(session, admin), **_unit_context(session, admin)})


@router.post("/users")
def users_create(request: Request, session: SessionDep, admin: ConsoleAdminDep,
                 username: Annotated[str, Form(max_length=200)] = "",
                 password: Annotated[str, Form(max_length=1024)] = "",
                 roles: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - FastAPI copies it
                 unit: Annotated[str, Form(max_length=63)] = "",
                 zones: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
                 zones_extra: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """Creates an account (as ``POST /api/v1/users``): username, password, one or more roles on a unit, zones."""
    values = {"username": username, "roles": roles, "unit": unit, "zones": zones, "zones_extra": zones_extra}
    with speaking_to(request):
        try:
            body = UserCreate.model_validate({"username": username.strip(), "password": password, "roles": roles,
                                              "unit": unit or None, "zones": split_zones(zones, zones_extra)})
        except ValidationError as exc:
            errors = _role_errors(field_errors(exc), roles)
            return render(request, "users/_create.html", _form_context(session, admin, values, errors), status_code=422)
        try:
            created = add_user(session, body, admin)
        except (UserExists, PasswordRefused) as exc:
            if isinstance(exc, UserExists):
                errors = {"username": [gettext("This username is already taken.")]}
            else:
                errors = {"password": [gettext(_PASSWORD_RULE)]}
            return render(request, "users/_create.html", _form_context(session, admin, values, errors), status_code=422)
    return render(request, "users/_create.html", _form_context(session, admin, created=created.username),
                  headers={"HX-Trigger": "users-changed"})


def _edit_context(session: SessionDep, admin: User, user: User, values: dict[str, Any] | None = None,
                  errors: dict[str, list[str]] | None = None, saved: str | None = None) -> dict[str, Any]:
    public = user_public(user)
    units = sorted({g.unit for g in public.grants})
    current = {"roles": public.roles, "unit": units[0] if len(units) == 1 else "", "zones": public.zones,
               "zones_extra": ""}
    chosen = list((values or current).get("zones", []))
    return {"account": public, "values": values or current, "errors": errors or {}, "roles_all": ROLES,
            "role_hints": ROLE_HINTS, "saved": saved, "password_errors": {},
            "zone_choices": zone_choices(session, wards_of(session, admin, ["admin"]), chosen),
            **_unit_context(session, admin)}


@router.get("/users/{user_id}")
def user_page(user_id: int, request: Request, session: SessionDep, admin: ConsoleAdminDep) -> Response:
    """One account: roles and where they are held, zones, disable/enable, password reset."""
    return render(request, "users/user.html", _edit_context(session, admin, _get(session, user_id, admin)))


def _self_lockout(request: Request) -> dict[str, list[str]]:
    with speaking_to(request):
        return {"__all__": [gettext("You cannot disable your own account or take away your own administrator "
                                    "role. Ask another administrator.")]}


@router.patch("/users/{user_id}")
def user_update(user_id: int, request: Request, session: SessionDep, admin: ConsoleAdminDep,
                roles: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - FastAPI copies it
                unit: Annotated[str, Form(max_length=63)] = "",
                zones: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
                zones_extra: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """Sets the account's roles, the unit they are held on, and zones (as ``PATCH /api/v1/users/{id}``)."""
    user = _get(session, user_id, admin)
    values = {"roles": roles, "unit": unit, "zones": zones, "zones_extra": zones_extra}
    with speaking_to(request):
        try:
            body = UserUpdate.model_validate({"roles": roles, "unit": unit or None,
                                              "zones": split_zones(zones, zones_extra)})
        except ValidationError as exc:
            errors = _role_errors(field_errors(exc), roles)
            return render(request, "users/_edit.html", _edit_context(session, admin, user, values, errors),
                          status_code=422)
    try:
        update_user(session, user_id, body, admin)
    except SelfLockout:
        return render(request, "users/_edit.html", _edit_context(session, admin, user, values, _self_lockout(request)),
                      status_code=422)
    return render(request, "users/_edit.html", _edit_context(session, admin, user, saved="roles"),
                  headers={"HX-Trigger": "users-changed"})


@router.post("/users/{user_id}/status")
def user_status(user_id: int, request: Request, session: SessionDep, admin: ConsoleAdminDep,
                disabled: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Disables (``disabled=true``) or enables (``false``) the account; a disabled account cannot sign in
    and its sessions stop working."""
    user = _get(session, user_id, admin)
    if disabled not in ("true", "false"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        update_user(session, user_id, UserUpdate(disabled=disabled == "true"), admin)
    except SelfLockout:
        return render(request, "users/_status.html", {"account": user_public(user), "errors": _self_lockout(request)},
                      status_code=422)
    return render(request, "users/_status.html", {"account": user_public(user), "errors": {}, "changed": True},
                  headers={"HX-Trigger": "users-changed"})


@router.post("/users/{user_id}/password")
def user_password(user_id: int, request: Request, session: SessionDep, admin: ConsoleAdminDep,
                  password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    """Sets a new password (as ``POST /api/v1/users/{id}/password``); the user's console sessions end."""
    user = _get(session, user_id, admin)
    context: dict[str, Any] = {"account": user_public(user)}
    with speaking_to(request):
        try:
            body = PasswordReset(password=password)
            reset_password(session, user_id, body.password, admin)
        except ValidationError as exc:
            return render(request, "users/_password.html", {**context, "password_errors": field_errors(exc)},
                          status_code=422)
        except PasswordRefused:
            errors = {"password": [gettext(_PASSWORD_RULE)]}
            return render(request, "users/_password.html", {**context, "password_errors": errors},
                          status_code=422)
    return render(request, "users/_password.html", {**context, "password_errors": {}, "reset": True})
