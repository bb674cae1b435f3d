"""``/api/v1/units``: the city or province and its wards. Every member of staff reads the units their roles
cover; admins add, change and remove units below the ones they administer.

controller/accounts/units.py does the work.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from controller.accounts import units
from controller.api.deps import AdminDep, EventsDep, SessionDep, StaffDep
from controller.api.errors import AUTHENTICATED, errors

router = APIRouter(prefix="/api/v1/units", tags=["units"], responses=AUTHENTICATED)

_NOT_FOUND = errors(404, e404="No such unit among those the caller's roles cover.")
_CONFLICT = errors(409, e409="The id is taken, the kind cannot sit there, or the unit still holds rows.")


@router.get("")
def list_units(session: SessionDep, user: StaffDep) -> list[units.UnitPublic]:
    """The units the caller's roles cover: the upper level first, then wards by name."""
    return [units.unit_public(u) for u in units.visible_units(session, user)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={**_NOT_FOUND, **_CONFLICT})
def add_unit(body: units.UnitCreate, session: SessionDep, admin: AdminDep, events: EventsDep) -> units.UnitPublic:
    """Adds a ward or commune (or a city under a province) below a unit the caller administers."""
    try:
        return units.unit_public(units.add_unit(session, admin, body, events))
    except units.UnitConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/{unit_id}", responses=_NOT_FOUND)
def get_unit(unit_id: str, session: SessionDep, user: StaffDep) -> units.UnitPublic:
    """One unit the caller's roles cover."""
    return units.unit_public(units.get_unit(session, user, unit_id))


@router.patch("/{unit_id}", responses=_NOT_FOUND)
def update_unit(unit_id: str, body: units.UnitUpdate, session: SessionDep, admin: AdminDep) -> units.UnitPublic:
    """Renames a unit or sets its official code or map centre."""
    return units.unit_public(units.update_unit(session, admin, unit_id, body))


@router.delete("/{unit_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**_NOT_FOUND, **_CONFLICT})
def remove_unit(unit_id: str, session: SessionDep, admin: AdminDep, events: EventsDep) -> None:
    """Removes a unit that holds nothing any more (409 naming what it still holds)."""
    try:
        units.remove_unit(session, admin, unit_id, events)
    except units.UnitConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
