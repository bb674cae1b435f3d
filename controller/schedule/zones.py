"""Zones: named groups of agents (an agent lists the zones it is in), with quiet hours and volumes by time of
day. The API's routes and the console's pages read and change them through :class:`ZoneService`.

A change to a zone's rules is told as a :class:`~controller.messaging.events.ZoneChanged` once committed:
its agents' schedule windows follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.messaging.events import EventBus, ZoneChanged
from controller.schedule.items import known_zones
from controller.storage.models import Device, User, Zone
from devices.protocol import ALL_ZONE, valid_id


class ZoneNotFound(LookupError):
    """No zone of that id (neither defined nor named by an agent)."""


class ZoneIdInvalid(ValueError):
    """Not an id a zone may have."""


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A zone with its members (a zone only named by agents has no row, hence no rules yet)."""

    id: str
    row: Zone | None
    agents: list[str]


def members(session: Session) -> dict[str, list[str]]:
    """Each zone's agents, by id."""
    found: dict[str, list[str]] = {}
    for device in session.scalars(select(Device).order_by(Device.id)):
        for zone in device.zones:
            found.setdefault(zone, []).append(device.id)
    return found


class ZoneService:
    """Reads zones; creates or replaces a zone's name and rules."""

    def __init__(self, events: EventBus) -> None:
        self.events = events

    def list_zones(self, session: Session) -> list[ZoneView]:
        """Every zone: those with rules and those only named by agents, by id."""
        found = members(session)
        rows = {z.id: z for z in session.scalars(select(Zone))}
        return [ZoneView(z, rows.get(z), found.get(z, [])) for z in sorted(known_zones(session))]

    def get(self, session: Session, zone_id: str) -> ZoneView:
        """One zone, or :class:`ZoneNotFound`."""
        if zone_id not in known_zones(session):
            raise ZoneNotFound(f"no zone {zone_id!r}")
        return ZoneView(zone_id, session.get(Zone, zone_id), members(session).get(zone_id, []))

    def put(self, session: Session, zone_id: str, name: str, quiet_hours: list[dict[str, Any]],
            volumes: list[dict[str, Any]], user: User, detail: dict[str, Any]) -> ZoneView:
        """Creates or replaces a zone's name and rules (``detail`` goes into the audit trail)."""
        if not valid_id(zone_id) or zone_id == ALL_ZONE:
            raise ZoneIdInvalid("zone ids are a-z, 0-9, _ and -" if zone_id != ALL_ZONE else
                                f'"{ALL_ZONE}" is the whole fleet and cannot be a zone')
        row = session.get(Zone, zone_id)
        if row is None:
            row = Zone(id=zone_id)
            session.add(row)
        row.name = name
        row.quiet_hours = quiet_hours
        row.volumes = volumes
        audit_chain.record(session, user, "zone.update", zone_id, detail)
        session.flush()
        agents = members(session).get(zone_id, [])
        # Its agents' windows are rebuilt once this transaction is committed.
        self.events.publish(ZoneChanged(zone_id, frozenset(agents)), session)
        return ZoneView(zone_id, row, agents)
