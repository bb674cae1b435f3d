"""Proof of play as reports read it: which plays a listing covers, and what each play was.

The API's listing (``/api/v1/plays``) and the console's reports and dashboard share this query, so both
count the same plays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from controller.storage.models import Device, Play

#: What a play was, for reports: an announcement, an occurrence of a schedule item, or a live session.
PlayKind = Literal["announcement", "schedule", "live"]
#: A play's outcome once it ended; ``playing`` selects plays not finished yet (no outcome).
OutcomeFilter = Literal["completed", "preempted", "stopped", "expired", "failed", "cut", "playing"]
#: Live sessions' plays are named after the session (``live-{session id}``, as the agent names them).
LIVE_PLAY_PREFIX = "live-"


@dataclass(frozen=True, slots=True)
class PlayFilters:
    """Which plays a listing or a report covers; every field unset means every play."""

    agent_id: str | None = None
    zone: str | None = None
    announcement_id: str | None = None
    item_id: str | None = None
    outcome: OutcomeFilter | None = None
    kind: PlayKind | None = None
    #: Scheduled start at or after / before (aware datetimes).
    since: datetime | None = None
    until: datetime | None = None
    #: Only plays of these wards (``plays.ward_id``): the caller's; None for every ward.
    wards: frozenset[str] | None = None


def play_kind(play: Play) -> PlayKind | None:
    """What a play was (None for one that names neither an announcement, an item nor a live session)."""
    if play.play_id.startswith(LIVE_PLAY_PREFIX):
        return "live"
    if play.announcement_id:
        return "announcement"
    if play.item_id:
        return "schedule"
    return None


def filtered_plays(session: Session, filters: PlayFilters) -> Select[Play]:
    """The plays matching ``filters``, newest scheduled first: the API's listing and the console's reports
    share this query, so both count the same plays."""
    query = select(Play)
    if filters.wards is not None:
        # First, and on the indexed column: a ward's report never reads another ward's plays.
        query = query.where(Play.ward_id.in_(sorted(filters.wards)))
    if filters.agent_id:
        query = query.where(Play.agent_id == filters.agent_id)
    if filters.zone:
        # Zones are a JSON list on the device: resolved here so the query stays portable.
        members = [d.id for d in session.scalars(select(Device)) if filters.zone in d.zones]
        query = query.where(Play.agent_id.in_(members))
    if filters.announcement_id:
        query = query.where(Play.announcement_id == filters.announcement_id)
    if filters.item_id:
        query = query.where(Play.item_id == filters.item_id)
    if filters.outcome == "playing":
        query = query.where(Play.outcome.is_(None))
    elif filters.outcome:
        query = query.where(Play.outcome == filters.outcome)
    if filters.kind == "live":
        query = query.where(Play.play_id.startswith(LIVE_PLAY_PREFIX, autoescape=True))
    elif filters.kind == "announcement":
        query = query.where(Play.announcement_id.is_not(None),
                            ~Play.play_id.startswith(LIVE_PLAY_PREFIX, autoescape=True))
    elif filters.kind == "schedule":
        query = query.where(Play.item_id.is_not(None), Play.announcement_id.is_(None),
                            ~Play.play_id.startswith(LIVE_PLAY_PREFIX, autoescape=True))
    if filters.since:
        query = query.where(Play.scheduled_start_ms >= int(filters.since.timestamp() * 1000))
    if filters.until:
        query = query.where(Play.scheduled_start_ms < int(filters.until.timestamp() * 1000))
    return query.order_by(Play.scheduled_start_ms.desc(), Play.id.desc())
