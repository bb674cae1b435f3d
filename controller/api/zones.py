"""``/api/v1/zones``: named groups of agents, their quiet hours and volumes by time of day
(controller/schedule/zones.py does the work)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from controller.api.deps import AdminDep, SessionDep, StaffDep, ZonesDep
from controller.api.schemas import ZonePublic, ZoneUpdate
from controller.api.views import zone_public
from controller.schedule.zones import ZoneIdInvalid, ZoneNotFound

router = APIRouter(prefix="/api/v1/zones", tags=["zones"])


@router.get("")
def list_zones(session: SessionDep, zones: ZonesDep, _user: StaffDep) -> list[ZonePublic]:
    """Every zone: those with rules and those only named by agents."""
    return [zone_public(z) for z in zones.list_zones(session)]


@router.get("/{zone_id}")
def get_zone(zone_id: str, session: SessionDep, zones: ZonesDep, _user: StaffDep) -> ZonePublic:
    """One zone."""
    try:
        return zone_public(zones.get(session, zone_id))
    except ZoneNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.put("/{zone_id}")
def put_zone(zone_id: str, body: ZoneUpdate, session: SessionDep, zones: ZonesDep, admin: AdminDep) -> ZonePublic:
    """Creates or replaces a zone's name and rules; its agents get new windows."""
    try:
        zone = zones.put(session, zone_id, body.name, [q.model_dump(mode="json") for q in body.quiet_hours],
                         [v.model_dump(mode="json") for v in body.volumes], admin, body.model_dump(mode="json"))
    except ZoneIdInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["path", "zone_id"], "msg": str(exc), "type": "value_error"}]) from None
    return zone_public(zone)
