"""``/api/v1/zones``: named groups of agents, their quiet hours and volumes by time of day."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller import audit
from controller.api.deps import AdminDep, ControllerDep, SessionDep, StaffDep
from controller.api.schemas import ZonePublic, ZoneUpdate
from controller.messaging.events import ZoneChanged
from controller.models import Device, Zone
from controller.schedule_items import known_zones
from devices.protocol import ALL_ZONE, valid_id

router = APIRouter(prefix="/api/v1/zones", tags=["zones"])


def _members(session: Session) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for device in session.scalars(select(Device).order_by(Device.id)):
        for zone in device.zones:
            members.setdefault(zone, []).append(device.id)
    return members


def zone_public(zone_id: str, row: Zone | None, members: dict[str, list[str]]) -> ZonePublic:
    """A zone as the API shows it (a zone only named by agents has no rules yet)."""
    return ZonePublic(id=zone_id, name=row.name if row else "", agents=members.get(zone_id, []),
                      quiet_hours=list(row.quiet_hours) if row else [], volumes=list(row.volumes) if row else [])


@router.get("")
def list_zones(session: SessionDep, _user: StaffDep) -> list[ZonePublic]:
    """Every zone: those with rules and those only named by agents."""
    members = _members(session)
    rows = {z.id: z for z in session.scalars(select(Zone))}
    return [zone_public(z, rows.get(z), members) for z in sorted(known_zones(session))]


@router.get("/{zone_id}")
def get_zone(zone_id: str, session: SessionDep, _user: StaffDep) -> ZonePublic:
    """One zone."""
    if zone_id not in known_zones(session):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no zone {zone_id!r}")
    return zone_public(zone_id, session.get(Zone, zone_id), _members(session))


@router.put("/{zone_id}")
def put_zone(zone_id: str, body: ZoneUpdate, session: SessionDep, controller: ControllerDep,
             admin: AdminDep) -> ZonePublic:
    """Creates or replaces a zone's name and rules; its agents get new windows."""
    if not valid_id(zone_id) or zone_id == ALL_ZONE:
        message = "zone ids are a-z, 0-9, _ and -" if zone_id != ALL_ZONE else \
            f'"{ALL_ZONE}" is the whole fleet and cannot be a zone'
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["path", "zone_id"], "msg": message, "type": "value_error"}])
    row = session.get(Zone, zone_id)
    if row is None:
        row = Zone(id=zone_id)
        session.add(row)
    row.name = body.name
    row.quiet_hours = [q.model_dump(mode="json") for q in body.quiet_hours]
    row.volumes = [v.model_dump(mode="json") for v in body.volumes]
    audit.record(session, admin, "zone.update", zone_id, body.model_dump(mode="json"))
    session.flush()
    members = _members(session)
    # Its agents' windows are rebuilt once this request's transaction is committed.
    controller.events.publish(ZoneChanged(zone_id, frozenset(members.get(zone_id, []))), session)
    return zone_public(zone_id, row, members)
