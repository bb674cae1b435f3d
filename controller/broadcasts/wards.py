"""Broadcasts within wards: who may compose, which media a ward owns, and how many wards the deployment has.

Every broadcast (announcement, live session, recording) belongs to one ward; what it names must lie in that
ward. Media files are stored once by content and owned by every ward that stored or was sent them
(:class:`~controller.storage.models.MediaWard`): a ward's staff reach only their wards' files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.accounts.reach import unit_tree, ward_for_new, wards_of
from controller.storage.engine import Database
from controller.storage.models import WARD_KINDS, Announcement, Delivery, MediaWard, Unit, User

#: The roles that compose broadcasts (admin counts as every role).
COMPOSER_ROLES: Final = ("officer", "approver")


def single_ward(session: Session) -> bool:
    """True when the deployment has one ward: its "all" may then use the fleet-wide group topic."""
    return (session.scalar(select(func.count()).select_from(Unit).where(Unit.kind.in_(WARD_KINDS))) or 0) <= 1


def claim_media(session: Session, sha256: str, ward_ids: Iterable[str]) -> None:
    """Records that each of ``ward_ids`` owns the stored file ``sha256`` (idempotent; the file must exist)."""
    wanted = set(ward_ids)
    if not wanted:
        return
    owned = set(session.scalars(select(MediaWard.ward_id).where(MediaWard.sha256 == sha256,
                                                                MediaWard.ward_id.in_(wanted))))
    session.add_all(MediaWard(sha256=sha256, ward_id=w) for w in sorted(wanted - owned))
    session.flush()


def media_in_wards(session: Session, sha256: str, ward_ids: Iterable[str]) -> bool:
    """Whether one of ``ward_ids`` owns the stored file ``sha256``."""
    wards = list(ward_ids)
    if not wards:
        return False
    return session.scalar(select(MediaWard.sha256).where(MediaWard.sha256 == sha256,
                                                         MediaWard.ward_id.in_(wards)).limit(1)) is not None


def every_ward(session: Session) -> frozenset[str]:
    """Every ward of the deployment."""
    return frozenset(unit_tree(session).wards())


def recent_in_wards(session: Session, wards: Iterable[str], limit: int,
                    offset: int = 0) -> list[tuple[Announcement, dict[str, int]]]:
    """The wards' announcements newest first, each with a count of its deliveries per state."""
    anns = list(session.scalars(select(Announcement).where(Announcement.ward_id.in_(list(wards)))
                                .order_by(Announcement.created_at.desc()).limit(limit).offset(offset)))
    counts: dict[str, dict[str, int]] = {a.id: {} for a in anns}
    if anns:
        rows = session.execute(select(Delivery.announcement_id, Delivery.status, func.count())
                               .where(Delivery.announcement_id.in_(list(counts)))
                               .group_by(Delivery.announcement_id, Delivery.status))
        for ann_id, state, n in rows:
            counts[ann_id][state] = n
    return [(a, counts[a.id]) for a in anns]


def ward_for_broadcast(db: Database, user: User, requested: str | None) -> tuple[str, bool]:
    """The ward a new broadcast of ``user`` goes to (:func:`~controller.accounts.reach.ward_for_new` for the
    composer roles), and whether the user is kept from seeing some wards (an unknown name then answers as
    another ward's would). Blocking; its own short read, so a request's session (holding the token's
    last-use write) never holds a lock the broadcast's own transaction then waits on."""
    with db.session() as session:
        return (ward_for_new(session, user, requested, COMPOSER_ROLES),
                wards_of(session, user) != every_ward(session))
