"""Staff accounts as admins manage them: create, change roles and zones, disable, reset a password.

The users API and the console's users page both call these, so the rules (names unique, the password
policy, an admin never locking themselves out) and the audit trail are the same whoever asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.auth import create_user, new_token, set_password, token_hash
from controller.accounts.reach import NotInReach, OutsideRole, WardNeeded, unit_tree, units_of
from controller.accounts.units import UnitId
from controller.api.schemas import ZoneName
from controller.storage.models import ROOT_UNIT, ApiToken, RoleGrant, User

Role = Literal["admin", "approver", "officer", "security", "technician", "viewer", "source"]


class Grant(BaseModel):
    """One role held on one unit (it covers the unit and every ward under it)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    unit: UnitId


class UserCreate(BaseModel):
    """A new member of staff: ``grants`` (a role on a unit each), or ``roles`` (or ``role``, shorthand for one)
    held on ``unit`` — by default the one unit the creating admin administers. Optionally limited to zones."""

    # _some_role's rule, in the API's document: a role, or a list of roles or grants with one in it.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["role"], "properties": {"role": {"not": {"type": "null"}}}},
        {"required": ["roles"], "properties": {"roles": {"minItems": 1}}},
        {"required": ["grants"], "properties": {"grants": {"minItems": 1}}}]})

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Role | None = None
    roles: list[Role] = Field(default_factory=list, max_length=6)
    unit: UnitId | None = None
    grants: list[Grant] = Field(default_factory=list, max_length=200)
    zones: list[ZoneName] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _some_role(self) -> UserCreate:
        if self.role is None and not self.roles and not self.grants:
            raise ValueError("give the user at least one role (grants: [...], roles: [...] or role: ...)")
        return self


class UserUpdate(BaseModel):
    """What an admin may change on an account; absent fields stay as they are. ``grants`` replaces every
    grant; ``roles`` replaces the roles, held on ``unit`` (default: where the user's roles are held now)."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] | None = Field(default=None, min_length=1, max_length=6)
    unit: UnitId | None = None
    grants: list[Grant] | None = Field(default=None, min_length=1, max_length=200)
    zones: list[ZoneName] | None = Field(default=None, max_length=200)
    disabled: bool | None = None


class PasswordReset(BaseModel):
    """An admin setting a new password for someone who lost theirs."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256)


class UserNotFound(LookupError):
    """No account with that id."""


class UserExists(Exception):
    """The username is taken."""


class PasswordRefused(ValueError):
    """The password does not meet the policy (the message says why)."""


class SelfLockout(Exception):
    """An admin disabling themselves or dropping their own admin role."""


def _admin_units(session: Session, admin: User) -> frozenset[str]:
    return units_of(session, admin, ["admin"])


def _grant_units(user: User) -> set[str]:
    return {g.unit_id for g in user.grants}


def visible_users(session: Session, admin: User) -> Select[User]:
    """The accounts an admin manages: those holding a role somewhere the admin administers."""
    units = _admin_units(session, admin)
    return select(User).where(User.id.in_(select(RoleGrant.user_id).where(RoleGrant.unit_id.in_(units))))


def get_user(session: Session, user_id: int, admin: User) -> User:
    """An account the admin manages, or :class:`UserNotFound` (also for accounts only other units have)."""
    user = session.get(User, user_id)
    if user is None or not _grant_units(user) & _admin_units(session, admin):
        raise UserNotFound(f"no user {user_id}")
    return user


def _managed(session: Session, user: User, admin: User) -> None:
    """Refuses changes to an account that also holds roles beyond the admin's units."""
    beyond = sorted(_grant_units(user) - _admin_units(session, admin))
    if beyond:
        raise OutsideRole(f"{user.username} also holds roles on units you do not administer "
                          f"({', '.join(beyond)}): an admin above them must change this account")


def _default_unit(session: Session, admin: User, role: str) -> str:
    """Where a role given without a unit is held: on a site with one ward, that ward (an officer of a one-ward
    site is the ward's officer, not the city's), except the admin role; otherwise the one unit the admin
    administers."""
    wards = unit_tree(session).wards()
    if role != "admin" and len(wards) == 1 and wards[0] in _admin_units(session, admin):
        return wards[0]
    tops = {g.unit_id for g in admin.grants if g.role == "admin"}
    if len(tops) == 1:
        return next(iter(tops))
    raise WardNeeded("you administer several units: say on which unit these roles are held (unit: …)")


def _grants_of(session: Session, admin: User, grants: list[Grant], roles: Sequence[str], unit: str | None,
               default: str | None) -> list[tuple[str, str]]:
    """The ``(role, unit)`` pairs asked for, every unit one the admin administers."""
    pairs: list[tuple[str, str]]
    if grants:
        pairs = [(str(g.role), g.unit) for g in grants]
    else:
        pairs = [(role, unit or default or _default_unit(session, admin, role)) for role in roles]
    admin_units = _admin_units(session, admin)
    for _, unit_id in pairs:
        if unit_id not in admin_units:
            check_ward_unit(session, admin, unit_id)
    return pairs


def check_ward_unit(session: Session, admin: User, unit_id: str) -> None:
    """404 for a unit the admin cannot see at all, 403 for one they see without administering it."""
    if unit_id not in units_of(session, admin):
        raise NotInReach(f"unit {unit_id} not found")
    raise OutsideRole(f"needs the admin role on unit {unit_id} or above it")


def _audit_unit(user: User) -> str:
    return user.grants[0].unit_id if user.grants else ROOT_UNIT


def add_user(session: Session, body: UserCreate, admin: User) -> User:
    """Creates an account with its roles; :class:`UserExists` or :class:`PasswordRefused` otherwise."""
    if session.scalar(select(User).where(User.username == body.username)) is not None:
        raise UserExists(f"user {body.username!r} already exists")
    roles: list[str] = [*body.roles, *([body.role] if body.role else [])]
    pairs = _grants_of(session, admin, list(body.grants), roles, body.unit, None)
    try:
        user = create_user(session, body.username, body.password, roles=[pairs[0][0]], zones=list(body.zones),
                           unit=pairs[0][1])
    except ValueError as exc:
        raise PasswordRefused(str(exc)) from None
    user.set_grants(pairs)
    audit_chain.record(session, admin, "user.create", user.username,
                       {"grants": [list(p) for p in pairs], "zones": user.zones}, unit=_audit_unit(user))
    return user


def update_user(session: Session, user_id: int, body: UserUpdate, admin: User) -> User:
    """Changes roles, zones or disables/enables an account; :class:`SelfLockout` for an admin's own lock-out."""
    user = get_user(session, user_id, admin)
    _managed(session, user, admin)
    pairs: list[tuple[str, str]] | None = None
    if body.grants is not None or body.roles is not None:
        held = _grant_units(user)
        pairs = _grants_of(session, admin, list(body.grants or []), list(body.roles or []), body.unit,
                           next(iter(held)) if len(held) == 1 else None)
    if user.id == admin.id and (body.disabled or (pairs is not None and "admin" not in {r for r, _ in pairs})):
        raise SelfLockout("you cannot disable yourself or drop your own admin role")
    changes: dict[str, object] = {}
    if pairs is not None:
        user.set_grants(pairs)
        changes["grants"] = [list(p) for p in pairs]
    if body.zones is not None:
        user.zones = list(body.zones)
        changes["zones"] = user.zones
    if body.disabled is not None:
        user.disabled = body.disabled
        changes["disabled"] = body.disabled
    audit_chain.record(session, admin, "user.update", user.username, changes, unit=_audit_unit(user))
    return user


def reset_password(session: Session, user_id: int, password: str, admin: User) -> User:
    """Sets a new password for the user (policy-checked); their console sessions end."""
    user = get_user(session, user_id, admin)
    _managed(session, user, admin)
    try:
        set_password(session, user, password)
    except ValueError as exc:
        raise PasswordRefused(str(exc)) from None
    audit_chain.record(session, admin, "user.password_reset", user.username, unit=_audit_unit(user))
    return user


class TokenCreate(BaseModel):
    """A script token for an account (a machine such as the province's source system): what it is for."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="what uses it, e.g. the system's name",
                      examples=["Hệ thống thông tin nguồn tỉnh"])


class TokenNotFound(LookupError):
    """No script token with that id on that account."""


def script_tokens(session: Session, user_id: int, admin: User) -> list[ApiToken]:
    """The account's script tokens (those that never expire; console sessions are not listed), oldest first."""
    user = get_user(session, user_id, admin)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.expires_at.is_(None))
                                .order_by(ApiToken.id)))


def issue_script_token(session: Session, user_id: int, name: str, admin: User) -> tuple[ApiToken, str]:
    """A new script token for the account: the row (only the token's hash is kept) and the token itself, which
    is shown this once. It lasts until revoked or the account is disabled; a password reset leaves it."""
    user = get_user(session, user_id, admin)
    _managed(session, user, admin)
    token = new_token()
    row = ApiToken(user_id=user.id, token_hash=token_hash(token), name=name)
    session.add(row)
    session.flush()
    audit_chain.record(session, admin, "user.token_issue", user.username, {"token_id": row.id, "name": name},
                       unit=_audit_unit(user))
    return row, token


def revoke_script_token(session: Session, user_id: int, token_id: int, admin: User) -> None:
    """Deletes one of the account's script tokens: it stops working at once."""
    user = get_user(session, user_id, admin)
    _managed(session, user, admin)
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.expires_at is not None:
        raise TokenNotFound(f"no token {token_id} on user {user_id}")
    session.delete(row)
    audit_chain.record(session, admin, "user.token_revoke", user.username, {"token_id": token_id, "name": row.name},
                       unit=_audit_unit(user))
