"""Broadcasts within wards: who may compose, which media a ward owns, how many wards the deployment has, and
how one broadcast fans out over the broker.

Every broadcast (announcement, live session, recording) belongs to one ward; what it names must lie in that
ward. Media files are stored once by content and owned by every ward that stored or was sent them
(:class:`~controller.storage.models.MediaWard`): a ward's staff reach only their wards' files.

Fan-out (:func:`plan_fan_out`): agents that listen on their ward's group topics (their ``info`` lists
``ward:{ward}``) get one command on the ward's ``all`` topic, or one on its zones' topics; agents enrolled
before wards, not yet moved (controller/fleet/groups.py), one on the legacy topics — the fleet's ``all``
only while the deployment has one ward — and whoever no group reaches alone a command of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from controller.accounts.reach import unit_tree, ward_for_new, wards_of
from controller.messaging.outbox import Outbox
from controller.storage.engine import Database
from controller.storage.models import (
    WARD_KINDS,
    Announcement,
    Delivery,
    Device,
    GroupCommand,
    MediaWard,
    Unit,
    User,
    utcnow,
)
from devices.protocol import ALL_ZONE, SpeakerPlay, capability_ward, ward_target, zone_target

#: The roles that compose broadcasts (admin counts as every role).
COMPOSER_ROLES: Final = ("officer", "approver")
#: A stored target naming every agent of the ward, and the prefix of one naming a zone.
ALL_TARGET: Final = "all"
ZONE_PREFIX: Final = "zone:"


def single_ward(session: Session) -> bool:
    """True when the deployment has one ward: its "all" may then use the fleet-wide group topic."""
    return (session.scalar(select(func.count()).select_from(Unit).where(Unit.kind.in_(WARD_KINDS))) or 0) <= 1


def claim_media(session: Session, sha256: str, ward_ids: Iterable[str]) -> None:
    """Records that each of ``ward_ids`` owns the stored file ``sha256`` (idempotent; the file must exist).

    ``INSERT … ON CONFLICT DO NOTHING``: the announcement worker and a schedule item rendering the same words
    claim the same file for the same ward at the same moment, and the second must not fail.
    """
    wanted = sorted(set(ward_ids))
    if not wanted:
        return
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    now = utcnow()
    session.execute(insert(MediaWard).values([{"sha256": sha256, "ward_id": w, "created_at": now} for w in wanted])
                    .on_conflict_do_nothing(index_elements=["sha256", "ward_id"]))


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


def zones_of_ward_only(session: Session, ward: str, zones: Sequence[str]) -> list[str]:
    """The zones among ``zones`` no agent of another ward names: a group command on their legacy topic reaches
    this ward's agents alone."""
    wanted = set(zones)
    shared: set[str] = set()
    for device_zones in session.scalars(select(Device.zones).where(Device.ward_id != ward)):
        shared.update(wanted.intersection(device_zones))
    return [z for z in zones if z not in shared]


@dataclass(frozen=True, slots=True)
class GroupSend:
    """One group command: its ``to`` and the agents it reaches."""

    to: str
    agents: frozenset[str]


def plan_fan_out(session: Session, ward: str, targets: Sequence[str],
                 agent_ids: Sequence[str]) -> tuple[list[GroupSend], list[str]]:
    """The group commands that reach ``agent_ids`` (agents of ``ward`` the stored ``targets`` name), and the
    agents left for a command each."""
    rows = list(session.execute(select(Device.id, Device.zones, Device.capabilities, Device.enabled)
                                .where(Device.ward_id == ward)))
    fleet = {agent_id: list(zones) for agent_id, zones, _, enabled in rows if enabled}
    on_ward = {agent_id for agent_id, _, caps, _ in rows if capability_ward(caps or ()) == ward}
    whole = ALL_TARGET in targets
    named = list(dict.fromkeys(t.removeprefix(ZONE_PREFIX) for t in targets if t.startswith(ZONE_PREFIX)))
    sends: list[GroupSend] = []
    listening = [a for a in agent_ids if a in on_ward]
    if listening:
        reached = frozenset(a for a in listening if whole or set(fleet.get(a, ())) & set(named))
        if reached:
            sends.append(GroupSend(ward_target(ward) if whole else ward_target(ward, named), reached))
    legacy = [a for a in agent_ids if a not in on_ward]
    if legacy:
        if whole and single_ward(session):
            # One ward: the fleet's "all" reaches it alone (agents on their ward's topics refuse zone:all).
            sends.append(GroupSend(zone_target([ALL_ZONE]), frozenset(legacy)))
        else:
            wanted = sorted({z for a in legacy for z in fleet.get(a, ())}) if whole else named
            zones = zones_of_ward_only(session, ward, wanted)
            reached = frozenset(a for a in legacy if set(fleet.get(a, ())) & set(zones))
            if reached:
                sends.append(GroupSend(zone_target(zones), reached))
    grouped = frozenset().union(*(send.agents for send in sends))
    return sends, [a for a in agent_ids if a not in grouped]


def sign_fan_out(outbox: Outbox, session: Session, ann_id: str, order: SpeakerPlay, ttl: int,
                 targets: Sequence[str], agent_ids: Sequence[str], attachment: bytes | None, ward: str) -> int:
    """Writes an announcement's commands (:func:`plan_fan_out`) to the outbox in ``session``'s transaction,
    each with its deliveries (the outbox moves them to ``sent`` once the broker has it); how many commands."""
    sends, alone = plan_fan_out(session, ward, targets, agent_ids)
    for send in sends:
        cmd = outbox.send(session, order, send.to, ttl_ms=ttl, priority=order.priority, attachment=attachment)
        assert cmd.id is not None  # a command is signed, so it has an id
        session.add(GroupCommand(id=cmd.id, announcement_id=ann_id, payload=cmd.payload.decode(),
                                 topics=list(cmd.route.topics), exp_ms=cmd.exp_ms or 0, status="queued"))
        session.flush()  # the deliveries name it: it must be in the table first
        session.add_all(Delivery(announcement_id=ann_id, agent_id=agent_id, command_id=cmd.id, group_id=cmd.id,
                                 exp_ms=cmd.exp_ms or 0, status="queued") for agent_id in agent_ids
                        if agent_id in send.agents)
    for agent_id in alone:
        cmd = outbox.send(session, order, agent_id, ttl_ms=ttl, priority=order.priority, attachment=attachment)
        assert cmd.id is not None
        session.add(Delivery(announcement_id=ann_id, agent_id=agent_id, command_id=cmd.id,
                             topic=cmd.route.topics[0], payload=cmd.payload.decode(), exp_ms=cmd.exp_ms or 0,
                             status="queued"))
    session.flush()
    return len(sends) + len(alone)
