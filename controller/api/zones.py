"""``/api/v1/zones``: named groups of agents, their quiet hours and volumes by time of day
(controller/schedule/zones.py does the work).

Each zone belongs to a ward; callers see the zones of their wards. Zone ids are unique across every ward,
so creating one another ward uses is 409 ("zone id taken", without saying whose)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from controller.accounts.reach import wards_of
from controller.api.deps import AdminDep, SessionDep, StaffDep, ZonesDep
from controller.api.errors import AUTHENTICATED, errors
from controller.api.schedule_schemas import ZonePublic, ZoneUpdate
from controller.api.views import zone_public
from controller.schedule.zones import ZoneIdInvalid, ZoneNotFound, ZoneTaken
from devices.protocol.topics import ID_PATTERN

router = APIRouter(prefix="/api/v1/zones", tags=["zones"], responses=AUTHENTICATED)
#: A zone id as the document states it: a topic segment (devices/protocol/topics.py); "all" is refused too,
#: a rule the pattern cannot say (pydantic's regex has no look-ahead).
_ZONE_ID = ID_PATTERN


@router.get("")
def list_zones(session: SessionDep, zones: ZonesDep, user: StaffDep) -> list[ZonePublic]:
    """Every zone of the caller's wards: those with rules and those only named by agents."""
    return [zone_public(z) for z in zones.list_zones(session, wards_of(session, user))]


@router.get("/{zone_id}", responses=errors(404))
def get_zone(zone_id: str, session: SessionDep, zones: ZonesDep, user: StaffDep) -> ZonePublic:
    """One zone."""
    try:
        return zone_public(zones.visible(session, user, zone_id))
    except ZoneNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.put("/{zone_id}", responses=errors(404, 409))
def put_zone(zone_id: Annotated[str, Path(pattern=_ZONE_ID)], body: ZoneUpdate, session: SessionDep, zones: ZonesDep,
             admin: AdminDep) -> ZonePublic:
    """Creates or replaces a zone's name and rules; its agents get new windows.

    A new zone goes to ``ward`` (needed only by admins of several wards); 409 when the id is taken by
    another ward.
    """
    try:
        zone = zones.put(session, zone_id, body.name, [q.model_dump(mode="json") for q in body.quiet_hours],
                         [v.model_dump(mode="json") for v in body.volumes], admin,
                         body.model_dump(mode="json", exclude={"ward"}), ward=body.ward)
    except ZoneTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ZoneIdInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["path", "zone_id"], "msg": str(exc), "type": "value_error"}]) from None
    return zone_public(zone)
