"""Zones: named groups of agents (an agent lists the zones it is in), with quiet hours and volumes by time of
day. The API's routes and the console's pages read and change them through :class:`ZoneService`.

Each zone belongs to one ward (``zones.ward_id``); zone ids stay unique across the whole deployment. A
zone an agent names gets its row in the agent's ward the first time (:func:`claim_zones`), so the row
says whose it is; zones only named by agents registered before wards existed have no row and belong to
those agents' ward (:func:`zone_wards`). A change to a zone's rules is told as a
:class:`~controller.messaging.events.ZoneChanged` once committed: its agents' schedule windows follow.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.reach import NotInReach, check_ward, ward_for_new, wards_of
from controller.messaging.events import EventBus, ZoneChanged
from controller.storage.models import Device, User, Zone
from devices.protocol import ALL_ZONE, valid_id

#: Who may define a zone's rules (as before wards: admins), now in the zone's own ward.
ZONE_ROLES = ("admin",)


class ZoneNotFound(LookupError):
    """No zone of that id (neither defined nor named by an agent) in the wards the caller can see."""


class ZoneIdInvalid(ValueError):
    """Not an id a zone may have."""


class ZoneTaken(Exception):
    """The id is a zone of a ward the caller does not act in (which one is not said)."""


class ZoneOfOtherWard(LookupError):
    """An agent named zones that belong to another ward (→ 404: to its ward they do not exist)."""


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A zone with its members (a zone only named by agents has no row, hence no rules yet)."""

    id: str
    row: Zone | None
    agents: list[str]
    ward: str


def _devices(wards: Collection[str] | None) -> Any:
    query = select(Device.id, Device.zones, Device.ward_id).order_by(Device.id)
    return query if wards is None else query.where(Device.ward_id.in_(wards))


def members(session: Session, wards: Collection[str] | None = None) -> dict[str, list[str]]:
    """Each zone's agents, by id (only the agents of ``wards``, when given)."""
    found: dict[str, list[str]] = {}
    for device_id, zones, _ward in session.execute(_devices(wards)):
        for zone in zones or ():
            found.setdefault(zone, []).append(device_id)
    return found


def ward_zones(session: Session, wards: Collection[str] | None = None) -> dict[str, str]:
    """zone id → its ward, for the zones of ``wards`` (every zone when None): rows, and zones only named by
    those wards' agents."""
    rows = select(Zone.id, Zone.ward_id)
    if wards is not None:
        rows = rows.where(Zone.ward_id.in_(wards))
    found = {zone_id: ward for zone_id, ward in session.execute(rows)}
    for _device, zones, ward in session.execute(_devices(wards)):
        for zone in zones or ():
            found.setdefault(zone, ward)
    return found


def _json_mentions(zone_id: str) -> Any:
    # A zone id is [a-z0-9_-]; "_" is LIKE's one-character wildcard, so it is escaped. The JSON array's
    # text holds each zone quoted, so this narrows to devices naming it (checked exactly after).
    escaped = zone_id.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return cast(Device.zones, String).like(f'%"{escaped}"%', escape="\\")


def zone_wards(session: Session, zone_ids: Iterable[str]) -> dict[str, str]:
    """The ward of each of ``zone_ids`` that exists anywhere (a row, or agents naming it); unknown ids are left out."""
    wanted = set(zone_ids)
    if not wanted:
        return {}
    found = {z: w for z, w in session.execute(select(Zone.id, Zone.ward_id).where(Zone.id.in_(wanted)))}
    for zone_id in sorted(wanted - set(found)):
        for zones, ward in session.execute(select(Device.zones, Device.ward_id).where(_json_mentions(zone_id))):
            if zone_id in (zones or ()):
                found[zone_id] = ward
                break
    return found


def claim_zones(session: Session, ward: str, zone_ids: Iterable[str]) -> None:
    """Makes sure every zone an agent of ``ward`` names is a zone of that ward: a new id gets its row there.

    :class:`ZoneOfOtherWard` (nothing written) when one of them is another ward's.
    """
    wanted = list(dict.fromkeys(zone_ids))
    owners = zone_wards(session, wanted)
    foreign = [z for z in wanted if owners.get(z, ward) != ward]
    if foreign:
        raise ZoneOfOtherWard(f"no zone {', '.join(repr(z) for z in foreign)} in ward {ward}")
    for zone_id in wanted:
        if zone_id not in owners:
            session.add(Zone(id=zone_id, ward_id=ward, name=""))
        elif session.get(Zone, zone_id) is None:
            # Named before wards existed: its row now records the ward it was always in.
            session.add(Zone(id=zone_id, ward_id=ward, name=""))
    session.flush()


class ZoneService:
    """Reads zones; creates or replaces a zone's name and rules, in the caller's wards."""

    def __init__(self, events: EventBus) -> None:
        self.events = events

    def list_zones(self, session: Session, wards: Collection[str] | None = None) -> list[ZoneView]:
        """The zones of ``wards`` (every zone when None): those with rules and those only named by agents, by id."""
        owners = ward_zones(session, wards)
        found = members(session, wards)
        rows_query = select(Zone)
        if wards is not None:
            rows_query = rows_query.where(Zone.ward_id.in_(wards))
        rows = {z.id: z for z in session.scalars(rows_query)}
        return [ZoneView(z, rows.get(z), found.get(z, []), owners[z]) for z in sorted(owners)]

    def get(self, session: Session, zone_id: str, wards: Collection[str] | None = None) -> ZoneView:
        """One zone, or :class:`ZoneNotFound` (also for a zone of a ward not in ``wards``)."""
        ward = zone_wards(session, [zone_id]).get(zone_id)
        if ward is None or (wards is not None and ward not in wards):
            raise ZoneNotFound(f"no zone {zone_id!r}")
        return ZoneView(zone_id, session.get(Zone, zone_id), members(session, [ward]).get(zone_id, []), ward)

    def visible(self, session: Session, user: User, zone_id: str) -> ZoneView:
        """One zone of a ward ``user`` can see, or :class:`ZoneNotFound` in the same words as an unknown id."""
        return self.get(session, zone_id, wards_of(session, user))

    def put(self, session: Session, zone_id: str, name: str, quiet_hours: list[dict[str, Any]],
            volumes: list[dict[str, Any]], user: User, detail: dict[str, Any],
            ward: str | None = None) -> ZoneView:
        """Creates or replaces a zone's name and rules (``detail`` goes into the audit trail).

        A new zone goes to ``ward`` (or the caller's only ward where they may define zones). An id another
        ward uses is :class:`ZoneTaken` whether or not the caller can see that ward (ids are global), and
        the message does not say which; a zone of a ward the caller sees without the role there is
        :class:`~controller.accounts.reach.OutsideRole`.
        """
        if not valid_id(zone_id) or zone_id == ALL_ZONE:
            raise ZoneIdInvalid("zone ids are a-z, 0-9, _ and -" if zone_id != ALL_ZONE else
                                f'"{ALL_ZONE}" is the whole fleet and cannot be a zone')
        owner = zone_wards(session, [zone_id]).get(zone_id)
        if owner is None:
            owner = ward_for_new(session, user, ward, ZONE_ROLES)
        else:
            try:
                check_ward(session, user, owner, ZONE_ROLES, "")
            except NotInReach:
                raise ZoneTaken("zone id taken") from None
            if ward is not None and ward != owner:
                raise ZoneTaken("zone id taken")
        row = session.get(Zone, zone_id)
        if row is None:
            row = Zone(id=zone_id, ward_id=owner)
            session.add(row)
        row.name = name
        row.quiet_hours = quiet_hours
        row.volumes = volumes
        audit_chain.record(session, user, "zone.update", zone_id, detail, unit=owner)
        session.flush()
        agents = members(session, [owner]).get(zone_id, [])
        # Its agents' windows are rebuilt once this transaction is committed.
        self.events.publish(ZoneChanged(zone_id, frozenset(agents)), session)
        return ZoneView(zone_id, row, agents, owner)
