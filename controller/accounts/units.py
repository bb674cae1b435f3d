"""The administrative units a deployment serves: a city or province over its wards and communes.

Admins manage the tree below the units they administer: an admin of the city adds and renames wards; an
admin of a ward renames it and sets its code and map centre. A unit is removed only when nothing belongs to
it and its audit log is empty (a mistyped unit); one with history is renamed instead. Units others administer
are invisible (404, as if they did not exist).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.reach import NotInReach, OutsideRole, forget_tree, unit_tree, units_of
from controller.messaging.events import DeviceChanged, EventBus
from controller.storage.models import (
    UPPER_KINDS,
    WARD_KINDS,
    Announcement,
    AuditEvent,
    Camera,
    Device,
    LiveSession,
    Play,
    RoleGrant,
    ScheduleItem,
    SignContent,
    SignItem,
    Unit,
    User,
    Zone,
)
from devices.protocol import ID_PATTERN

UnitId = Annotated[str, Field(pattern=ID_PATTERN, description="a unit's id: lower-case letters, digits, _ and -")]
UnitKind = Literal["province", "city", "ward", "commune"]

#: What may hang under what: wards and communes under a city or a province; cities under a province.
_ALLOWED_PARENTS: dict[str, tuple[str, ...]] = {"ward": UPPER_KINDS, "commune": UPPER_KINDS,
                                                "city": ("province",), "province": ()}
#: What still belongs to a ward, checked before it may go (a name for the refusal, the table's ward column).
_OWNED_BY_WARD = (("devices", Device.ward_id), ("zones", Zone.ward_id), ("schedule items", ScheduleItem.ward_id),
                  ("announcements", Announcement.ward_id), ("plays", Play.ward_id),
                  ("live sessions", LiveSession.ward_id), ("cameras", Camera.ward_id),
                  ("sign contents", SignContent.ward_id), ("sign items", SignItem.ward_id))


class UnitCreate(BaseModel):
    """A new ward or commune (or a city under a province), placed under a unit the caller administers."""

    model_config = ConfigDict(extra="forbid")

    id: UnitId
    kind: UnitKind
    name: str = Field(min_length=1, max_length=200)
    parent: UnitId
    code: str = Field(default="", max_length=16, pattern=r"^[0-9A-Za-z]*$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class UnitUpdate(BaseModel):
    """What may change on a unit; its id and place in the tree stay."""

    # Strict: a number is not a boolean and false is not 0.0 (the API's document says so; lax would read them).
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    code: str | None = Field(default=None, max_length=16, pattern=r"^[0-9A-Za-z]*$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    approve_city_items: bool | None = Field(
        default=None, description="a ward approves the city's items of normal priority itself: they wait in its "
                                  "approval queue (priority and emergency ones go straight through)")


class UnitPublic(BaseModel):
    """A unit as the API shows it."""

    id: str
    kind: str
    name: str
    parent: str | None
    code: str
    lat: float | None
    lon: float | None
    approve_city_items: bool = False


class UnitConflict(Exception):
    """The id is taken, the kind cannot sit there, or the unit still holds something (→ 409)."""


def unit_public(unit: Unit) -> UnitPublic:
    """The public view of a unit."""
    return UnitPublic(id=unit.id, kind=unit.kind, name=unit.name, parent=unit.parent_id, code=unit.code,
                      lat=unit.lat, lon=unit.lon, approve_city_items=unit.approve_city_items)


def _not_found(unit_id: str) -> NotInReach:
    return NotInReach(f"unit {unit_id} not found")


def visible_units(session: Session, user: User) -> list[Unit]:
    """The units the user's roles cover, root-most first (the upper level, then wards by name)."""
    ids = units_of(session, user)
    if not ids:
        return []
    rows = list(session.scalars(select(Unit).where(Unit.id.in_(ids))))
    return sorted(rows, key=lambda u: (u.kind in WARD_KINDS, u.name, u.id))


def get_unit(session: Session, user: User, unit_id: str) -> Unit:
    """One unit the user can see, or :class:`NotInReach`."""
    unit = session.get(Unit, unit_id)
    if unit is None or unit_id not in units_of(session, user):
        raise _not_found(unit_id)
    return unit


def _administered(session: Session, user: User, unit_id: str) -> None:
    """Passes when the user is an admin of ``unit_id`` or a unit above it."""
    if unit_id not in units_of(session, user):
        raise _not_found(unit_id)
    if unit_id not in units_of(session, user, ["admin"]):
        raise OutsideRole(f"needs the admin role on unit {unit_id} or above it")


def add_unit(session: Session, user: User, body: UnitCreate, events: EventBus) -> Unit:
    """Adds a unit under one the caller administers.

    A second ward changes what agents may read at the broker (the fleet-wide group is for a one-ward site
    only), so the broker's accounts are written again once this commits.
    """
    _administered(session, user, body.parent)
    parent = session.get(Unit, body.parent)
    assert parent is not None  # _administered found it in the tree
    if parent.kind not in _ALLOWED_PARENTS[body.kind]:
        raise UnitConflict(f"a {body.kind} cannot be placed under a {parent.kind}")
    if session.get(Unit, body.id) is not None:
        raise UnitConflict(f"unit id {body.id} is taken")
    unit = Unit(id=body.id, kind=body.kind, name=body.name, parent_id=body.parent, code=body.code,
                lat=body.lat, lon=body.lon)
    session.add(unit)
    session.flush()
    forget_tree(session)
    audit_chain.record(session, user, "unit.create", unit.id, {"kind": unit.kind, "name": unit.name,
                                                               "parent": unit.parent_id}, unit=body.parent)
    events.publish(DeviceChanged(frozenset(), access=True), session)
    return unit


def update_unit(session: Session, user: User, unit_id: str, body: UnitUpdate) -> Unit:
    """Renames a unit or sets its code or map centre (admins of it or above)."""
    _administered(session, user, unit_id)
    unit = get_unit(session, user, unit_id)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if field in ("name", "code", "approve_city_items") and value is None:
            continue
        setattr(unit, field, value)
    audit_chain.record(session, user, "unit.update", unit.id, changes, unit=unit.id)
    return unit


def remove_unit(session: Session, user: User, unit_id: str, events: EventBus) -> None:
    """Removes an empty unit (admins of its parent); :class:`UnitConflict` naming what it still holds."""
    unit = get_unit(session, user, unit_id)
    if unit.parent_id is None:
        raise UnitConflict("the top of the tree cannot be removed")
    _administered(session, user, unit.parent_id)
    held = [f"{n} {name}" for name, column in _OWNED_BY_WARD
            if (n := session.scalar(select(func.count()).where(column == unit_id)))]
    children = session.scalar(select(func.count()).select_from(Unit).where(Unit.parent_id == unit_id))
    if children:
        held.insert(0, f"{children} units")
    if held:
        raise UnitConflict(f"unit {unit_id} still holds {', '.join(held)}: move or remove them first")
    history = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.unit_id == unit_id))
    if history:
        # The chained audit log is never rewritten, and its rows name this unit.
        raise UnitConflict(f"unit {unit_id} has {history} audit log entries, which are kept for good: rename it "
                           "instead")
    grants = session.scalar(select(func.count()).select_from(RoleGrant).where(RoleGrant.unit_id == unit_id))
    parent = unit.parent_id
    session.delete(unit)
    session.flush()
    forget_tree(session)
    audit_chain.record(session, user, "unit.delete", unit_id, {"grants_removed": grants or 0}, unit=parent)
    events.publish(DeviceChanged(frozenset(), access=True), session)


def ward_names(session: Session) -> dict[str, str]:
    """Every unit's name by id (for showing a row's ward)."""
    return dict(unit_tree(session).name)
