"""Schedule windows: each agent's plays for the next hours, signed, versioned, retained on the broker.

The publisher rebuilds windows when asked (an item, zone or device changed: only the agents it
touches) and on a timer (the window rolls forward). A window whose plays did not change is not sent
again unless its expiry is getting close. Building runs in a worker thread; a new window is stored and
written to the outbox in one transaction (controller/messaging/outbox.py publishes it). At start every
stored window is written again: the broker may have been replaced or wiped while we were away.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Collection, Iterable
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.fleet.play_guard import give_plays, prune_given
from controller.messaging.outbox import Outbox, RetainedDoc
from controller.messaging.rebuilds import RebuildRequests
from controller.schedule.items import to_model
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import AgentSchedule, Device, MediaFile, ScheduleItem, Zone, utcnow
from devices.protocol import (
    MAX_PAYLOAD_BYTES,
    MAX_STANDBY,
    MAX_WINDOW_PLAYS,
    MediaSegment,
    ScheduledPlay,
    ScheduleWindow,
    Segment,
    now_ms,
)
from schedules import model as sm
from schedules.plan import Plan, plan

log = logging.getLogger(__name__)

_SEGMENT: TypeAdapter[Segment] = TypeAdapter(Segment)

#: A window is sent again, changed or not, once less than this is left before it expires.
RESEND_BEFORE_EXPIRY_MS = 24 * 3600 * 1000


def standby_segments(session: Session) -> list[MediaSegment]:
    """The standby alarm recordings every agent keeps, oldest first (at most ``MAX_STANDBY``)."""
    rows = session.scalars(select(MediaFile).where(MediaFile.standby.is_(True))
                           .order_by(MediaFile.created_at, MediaFile.sha256).limit(MAX_STANDBY))
    return [MediaSegment(sha256=r.sha256, size=r.size, duration_ms=r.duration_ms, mime=r.mime) for r in rows]


def zone_policies(rows: Iterable[Zone]) -> dict[str, sm.ZonePolicy]:
    """Quiet hours and volumes per zone, as the planner takes them."""
    return {z.id: sm.ZonePolicy.model_validate({"zone": z.id, "quiet_hours": z.quiet_hours, "volumes": z.volumes})
            for z in rows}


def plan_wards(session: Session, start_ms: int, end_ms: int, tz: ZoneInfo, *,
               statuses: Collection[str] = ("approved",), agent_ids: Iterable[str] | None = None,
               wards: Collection[str] | None = None) -> tuple[Plan, list[ScheduleItem], dict[str, list[str]]]:
    """Items in ``statuses`` planned over ``[start_ms, end_ms)`` on enabled agents (blocking); also the item
    rows read and the agents with their zones.

    Each ward is planned on its own: its agents get only its items ("all" is every agent of the item's
    ward), under its own zones' quiet hours, so an item never reaches another ward's speaker. ``agent_ids``
    narrows the agents (and the items to their wards); ``wards`` narrows both to those wards.
    """
    query = select(Device.id, Device.ward_id, Device.zones).where(Device.enabled.is_(True))
    if agent_ids is not None:
        query = query.where(Device.id.in_(list(agent_ids)))
    if wards is not None:
        query = query.where(Device.ward_id.in_(list(wards)))
    by_ward: dict[str, dict[str, list[str]]] = {}
    for agent_id, ward, zones in session.execute(query):
        by_ward.setdefault(ward, {})[agent_id] = list(zones)
    item_query = select(ScheduleItem).where(ScheduleItem.status.in_(list(statuses)))
    if wards is not None:
        item_query = item_query.where(ScheduleItem.ward_id.in_(list(wards)))
    elif agent_ids is not None:
        item_query = item_query.where(ScheduleItem.ward_id.in_(list(by_ward)))
    rows = list(session.scalars(item_query))
    items: dict[str, list[sm.ScheduleItem]] = {}
    for row in rows:
        try:
            items.setdefault(row.ward_id, []).append(to_model(row))
        except Exception as exc:  # one unreadable row must not stop every speaker's schedule
            log.error("schedule item %s skipped: %s", row.id, exc)
    planned = set(by_ward) | set(items)
    policies: dict[str, list[Zone]] = {}
    for zone in session.scalars(select(Zone).where(Zone.ward_id.in_(list(planned)))):
        policies.setdefault(zone.ward_id, []).append(zone)
    result = Plan()
    for ward in sorted(planned):
        part = plan(items.get(ward, []), by_ward.get(ward, {}), zone_policies(policies.get(ward, [])),
                    start_ms, end_ms, tz)
        result.plays.update(part.plays)
        result.blocked.extend(part.blocked)
    return result, rows, {a: z for agents in by_ward.values() for a, z in agents.items()}


class WindowPublisher:
    """Keeps every agent's retained ``schedule.window`` current."""

    def __init__(self, settings: Settings, db: Database, outbox: Outbox) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox
        self.requests = RebuildRequests("schedule windows")
        self.builds = 0

    # asking -----------------------------------------------------------------------------------------

    def request(self, agent_ids: Iterable[str] | None) -> None:
        """Asks for these agents' windows (None: every agent) to be rebuilt soon. Safe from any thread."""
        self.requests.request(agent_ids)

    # the task ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Writes the stored windows again, then rebuilds whenever asked; changes arriving together build together."""
        self.requests.bind()
        try:
            again = await asyncio.to_thread(self.write_stored)
            log.info("schedule windows of %d agent(s) written again for the broker", again)
        except Exception:
            log.exception("writing the stored schedule windows again failed; new builds still go out")
        await self.requests.serve(self.build)

    def write_stored(self) -> int:
        """Writes every stored window to the outbox again (blocking); agents that hold one drop the repeat."""
        with self.db.session() as session:
            rows = session.execute(select(AgentSchedule.version, AgentSchedule.payload)).all()
            for version, payload in rows:
                self.outbox.send_stored(session, payload.encode(), ref=str(version))
            return len(rows)

    # building ---------------------------------------------------------------------------------------

    def compute(self, start_ms: int, end_ms: int,
                agent_ids: Iterable[str] | None = None) -> tuple[Plan, dict[str, int]]:
        """The plan of approved items for a window (blocking); also each item's saved time."""
        with self.db.session() as session:
            result, rows, _agents = plan_wards(session, start_ms, end_ms, self.settings.tz, agent_ids=agent_ids)
        return result, {r.id: r.saved_ms for r in rows}

    def build(self, agent_ids: set[str] | None) -> list[RetainedDoc]:
        """New windows for these agents (None: all) where their plays changed; stored before they are sent."""
        self.builds += 1
        now = now_ms()
        end = now + self.settings.schedule_window_hours * 3_600_000
        with self.db.session() as session:
            known = set(session.scalars(select(Device.id).where(Device.enabled.is_(True))))
        targets = known if agent_ids is None else known & agent_ids
        if not targets:
            return []
        result, saved = self.compute(now, end, targets)
        grace = self.settings.schedule_grace_ms
        queued = {p.item_id for plays in result.plays.values() for p in plays}  # filled below per play
        outgoing: list[RetainedDoc] = []
        with self.db.session() as session:
            if agent_ids is None:  # the periodic roll-forward: a good moment to forget long-gone plays
                prune_given(session, now)
            standby = standby_segments(session)
            queue_items = set(session.scalars(select(ScheduleItem.id).where(ScheduleItem.queue.is_(True),
                                                                             ScheduleItem.id.in_(queued))))
            for agent_id in sorted(targets):
                plays = [p for p in result.plays.get(agent_id, []) if p.start_ms >= saved.get(p.item_id, 0)]
                window_end = end
                if len(plays) > MAX_WINDOW_PLAYS:
                    plays = plays[:MAX_WINDOW_PLAYS]
                    window_end = plays[-1].start_ms + 1
                    log.warning("agent %s: window cut at %d plays", agent_id, MAX_WINDOW_PLAYS)
                scheduled = [
                    ScheduledPlay(play_id=p.play_id, item_id=p.item_id, priority=p.priority, start_at=p.start_ms,
                                  latest_start=p.start_ms + (4 * grace if p.item_id in queue_items else grace),
                                  segments=[_SEGMENT.validate_python(seg.model_dump()) for seg in p.segments],
                                  volume=p.volume,
                                  title=p.title)
                    for p in plays]
                digest = hashlib.sha256(json.dumps([[s.model_dump(mode="json") for s in scheduled],
                                                    [s.model_dump(mode="json") for s in standby]],
                                                   sort_keys=True).encode()).hexdigest()
                row = session.get(AgentSchedule, agent_id)
                if row is not None and row.digest == digest and row.window_end_ms - now > RESEND_BEFORE_EXPIRY_MS:
                    continue
                version = (row.version if row is not None else 0) + 1
                prepared = self.outbox.prepare(ScheduleWindow(version=version, window_start=now,
                                                              window_end=window_end, plays=scheduled,
                                                              standby=standby),
                                               agent_id, ttl_ms=window_end - now)
                payload = prepared.payload
                if len(payload) > MAX_PAYLOAD_BYTES:
                    log.error("agent %s: window of %d plays is %d bytes, over the broker's limit; not sent",
                              agent_id, len(scheduled), len(payload))
                    continue
                if row is None:
                    row = AgentSchedule(agent_id=agent_id)
                    session.add(row)
                row.version, row.digest, row.plays = version, digest, len(scheduled)
                row.window_end_ms, row.payload, row.pushed_at, row.published = window_end, payload.decode(), \
                    utcnow(), False
                # Its plays are given to it from now on: their proof of play is believed (play_guard).
                give_plays(session, agent_id, [(s.play_id, s.start_at) for s in scheduled], "window")
                # Published once this transaction commits, and only then: a build that fails sends nothing.
                self.outbox.write(session, prepared, ref=str(version))
                outgoing.append(RetainedDoc(agent_id, version, payload))
        return outgoing
