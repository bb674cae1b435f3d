"""What the upper level's source system (hệ thống thông tin nguồn, TT 39/2020) pushed, read back: the proof
of play of a city item or announcement across its wards, and where the system's recordings belong.

The system's account holds ``source`` on the city or province (or ``admin``); it reaches the wards under those
units. A broadcast it cannot see answers as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from controller.accounts.reach import NotInReach, OutsideRole, units_of, wards_of
from controller.broadcasts.from_above import visible_parent
from controller.schedule.city_items import CityItem, CityItems
from controller.storage.models import SOURCE_ROLE, Announcement, CityBroadcast, Play, ScheduleItem, User

#: What the source system holds above its wards (admins hold every role).
SOURCE_ROLES = (SOURCE_ROLE,)


@dataclass(frozen=True, slots=True)
class BroadcastPlays:
    """A pushed item or announcement and every play of its wards' parts (every attempt), by ward and agent."""

    parent: CityBroadcast
    plays: list[Play]


def source_wards(session: Session, user: User) -> list[str]:
    """The wards the source system reaches (under the units where it holds ``source``), in id order: a
    recording it uploads belongs to each, so a push to any of them may play it."""
    return sorted(wards_of(session, user, SOURCE_ROLES))


def broadcast_plays(session: Session, user: User, broadcast_id: str) -> BroadcastPlays:
    """Every play of the wards' parts of a city broadcast the caller sees (:class:`NotInReach` otherwise).

    Plays are read by the parts' ids and only in the caller's wards, in SQL: a ward's part the caller
    cannot see contributes nothing.
    """
    missing = f"no broadcast {broadcast_id!r}"
    row = session.get(CityBroadcast, broadcast_id)
    parent = visible_parent(session, user, broadcast_id, row.kind) if row is not None else None
    if parent is None:
        raise NotInReach(missing)
    wards = sorted(wards_of(session, user))
    of_parts: ColumnElement[bool]
    if parent.kind == "announcement":
        parts = select(Announcement.id).where(Announcement.parent_id == parent.id, Announcement.ward_id.in_(wards))
        of_parts = Play.announcement_id.in_(parts)
    else:
        parts = select(ScheduleItem.id).where(ScheduleItem.parent_id == parent.id, ScheduleItem.ward_id.in_(wards))
        # An announcement's play may name an item too; a schedule part's plays name no announcement.
        of_parts = Play.item_id.in_(parts) & Play.announcement_id.is_(None)
    plays = session.scalars(select(Play).where(Play.ward_id.in_(wards), of_parts)
                            .order_by(Play.ward_id, Play.agent_id, Play.scheduled_start_ms, Play.attempt))
    return BroadcastPlays(parent, list(plays))


def withdraw(city: CityItems, session: Session, item_id: str, user: User) -> CityItem:
    """Cancels a pushed item in every ward. A source system withdraws only what it pushed itself: the city's
    staff's items are theirs to change (:class:`OutsideRole`); an admin of the unit withdraws any."""
    parent = city.get(session, item_id, user).parent
    if parent.created_by != user.id and parent.unit_id not in units_of(session, user, ()):
        raise OutsideRole(f"item {parent.id} was not pushed by this system: the city's staff change it")
    return city.cancel(session, item_id, user, SOURCE_ROLES)
