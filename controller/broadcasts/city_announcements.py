"""City announcements: one announcement the city (or province) sends now, or at a time, to chosen wards.

Each chosen ward gets its own announcement (``parent_id`` names the city's), with the ward's part of the
targets, so rendering, signing, delivery and proof of play are the ward's as for its own announcements. One of
normal priority waits (``pending``) in a ward that approves the city's items itself until that ward's approver
approves it; priority and emergency ones go out at once everywhere.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.reach import NotInReach, OutsideRole, check_ward, wards_of
from controller.broadcasts.announcements import AnnouncementService, InvalidAnnouncement, ward_agent_zones
from controller.broadcasts.from_above import (
    WardChoice,
    choose_wards,
    held_for_ward,
    names_to_parts,
    split_targets,
    target_names,
    visible_parent,
)
from controller.broadcasts.wards import COMPOSER_ROLES, claim_media, media_in_wards
from controller.messaging.events import AnnouncementChanged
from controller.storage.models import Announcement, CityBroadcast, Delivery, MediaFile, User
from devices.protocol import Priority

KIND = "announcement"
APPROVER_ROLES = ("approver",)


class AnnouncementStateError(ValueError):
    """Not pending, so there is nothing to approve or reject (→ 409)."""


class AnnouncementForbidden(PermissionError):
    """The four-eyes rule: the sender does not approve their own announcement (→ 403)."""


@dataclass(frozen=True, slots=True)
class CityPart:
    """One ward's announcement of a city announcement, and the agents it reaches there."""

    ward: str
    announcement_id: str
    status: str
    agents: list[str]


@dataclass(frozen=True, slots=True)
class CitySent:
    """What a city announcement became."""

    parent: CityBroadcast
    parts: list[CityPart]


class CityAnnouncements:
    """Accepts city announcements, shows them, and lets a ward's approver decide a held one."""

    def __init__(self, service: AnnouncementService) -> None:
        self.service = service
        self.db = service.db

    async def submit(self, text: str, targets: Sequence[str], priority: Priority, start_at: datetime | None,
                     user: User, recording: str | None, wards: WardChoice,
                     roles: Collection[str] = COMPOSER_ROLES) -> CitySent:
        """Checks and stores off the event loop, then queues every part not held for approval.

        ``roles``: what the sender must hold above the wards (the upper level's source system holds ``source``).
        """
        sent = await asyncio.to_thread(self.accept, text, targets, priority, start_at, user, recording, wards,
                                       roles)
        for part in sent.parts:
            if part.status == "rendering":
                self.service.enqueue(part.announcement_id, priority)
        return sent

    def accept(self, text: str, targets: Sequence[str], priority: Priority, start_at: datetime | None,
               user: User, recording: str | None, wards: WardChoice,
               roles: Collection[str] = COMPOSER_ROLES) -> CitySent:
        """Every part is checked before any is stored: one ward's refusal refuses the whole (blocking)."""
        text, spoken, requested_ms = self.service.check_input(text, recording, start_at)
        with self.db.session() as session:
            chosen = choose_wards(session, user, wards, roles)
            if recording is not None:
                if session.get(MediaFile, recording) is None or not media_in_wards(
                        session, recording, wards_of(session, user, roles)):
                    raise InvalidAnnouncement("recording", f"no stored recording {recording}")
                claim_media(session, recording, chosen.wards)
            all_, zones, agents = names_to_parts(targets)
            split = split_targets(session, chosen.wards, all_, zones, agents)
            parent = CityBroadcast(id=uuid.uuid4().hex, kind=KIND, unit_id=chosen.unit, wards=chosen.wards,
                                   all_wards=chosen.all_wards, title=text[:200], priority=priority.value,
                                   status="active", revision=0, created_by=user.id)
            session.add(parent)
            session.flush()
            parts: list[CityPart] = []
            for ward, part in split.items():
                names = target_names(part)
                if chosen.all_wards and not ward_agent_zones(session, ward):
                    continue  # "all" of the city: a ward with no speakers yet has nothing to hear it
                try:
                    reached = self.service.agents_for(session, names, ward)
                except InvalidAnnouncement as exc:
                    raise InvalidAnnouncement(exc.field, f"ward {ward}: {exc}") from None
                ann = self.service.store(session, text, spoken, names, priority, requested_ms, user.id, recording,
                                         ward, parent_id=parent.id, held=held_for_ward(session, ward, priority))
                parts.append(CityPart(ward, ann.id, ann.status, reached))
            audit_chain.record(session, session.get(User, user.id), "city_announcement.create", parent.id,
                               {"text": text[:500], "priority": priority.value, "wards": chosen.wards,
                                "announcements": {p.ward: p.announcement_id for p in parts}}, unit=chosen.unit)
        return CitySent(parent, parts)

    def get(self, session: Session, parent_id: str, user: User) -> CitySent:
        """A city announcement the caller sees (a role on its unit or above), or :class:`NotInReach`."""
        parent = visible_parent(session, user, parent_id, KIND)
        if parent is None:
            raise NotInReach(f"no announcement {parent_id!r}")
        children = session.scalars(select(Announcement).where(Announcement.parent_id == parent.id)
                                   .order_by(Announcement.ward_id))
        return CitySent(parent, [CityPart(a.ward_id, a.id, a.status, list(a.targets)) for a in children])

    async def decide(self, ann_id: str, user: User, approve: bool, reason: str = "") -> str:
        """A ward's approver lets a held announcement go out (it is rendered and sent now) or rejects it;
        returns its new status."""
        status, priority = await asyncio.to_thread(self._decide, ann_id, user, approve, reason)
        if status == "rendering":
            self.service.enqueue(ann_id, priority)
        self.service.events.publish(AnnouncementChanged(ann_id))
        return status

    def _decide(self, ann_id: str, user: User, approve: bool, reason: str) -> tuple[str, Priority]:
        missing = f"no announcement {ann_id!r}"
        with self.db.session() as session:
            ann = session.get(Announcement, ann_id)
            if ann is None:
                raise NotInReach(missing)
            check_ward(session, user, ann.ward_id, None, missing)
            if ann.ward_id not in wards_of(session, user, APPROVER_ROLES):
                raise OutsideRole(f"needs one of the roles admin, approver in ward {ann.ward_id}")
            if ann.status != "pending":
                raise AnnouncementStateError(f"announcement {ann_id} is {ann.status}, not pending")
            if ann.created_by == user.id:
                raise AnnouncementForbidden("an announcement must be approved by someone other than its sender")
            ann.status = "rendering" if approve else "rejected"
            ann.error = None if approve else f"rejected: {reason}"
            audit_chain.record(session, session.get(User, user.id),
                               "announcement.approve" if approve else "announcement.reject", ann.id,
                               {"reason": reason} if reason else {}, unit=ann.ward_id)
            return ann.status, Priority(ann.priority)


def with_counts(session: Session, ann_id: str) -> tuple[Announcement, dict[str, int]]:
    """An announcement and a count of its deliveries per state (it must exist)."""
    ann = session.get(Announcement, ann_id)
    assert ann is not None  # decided a moment ago; announcements are never deleted
    counts = dict(session.execute(select(Delivery.status, func.count()).where(Delivery.announcement_id == ann_id)
                                  .group_by(Delivery.status)).tuples().all())
    return ann, counts
