"""``/api/v1/plays`` and ``/api/v1/reports``: proof of play — what each agent reports it actually played."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from controller.api.deps import SessionDep, StaffDep
from controller.api.schemas import ItemReport, PlayPublic, ms_iso
from controller.models import Device, Play, ScheduleItem

router = APIRouter(tags=["plays"])

_CSV_FIELDS = ("agent_id", "play_id", "attempt", "announcement_id", "item_id", "sha256", "priority", "output",
               "scheduled_start", "actual_start", "ended_at", "start_offset_ms", "duration_ms", "outcome", "reason")


def play_public(play: Play) -> PlayPublic:
    """The public view of a play."""
    offset = None if play.actual_start_ms is None else play.actual_start_ms - play.scheduled_start_ms
    duration = None if play.actual_start_ms is None or play.ended_at_ms is None \
        else play.ended_at_ms - play.actual_start_ms
    return PlayPublic(agent_id=play.agent_id, play_id=play.play_id, attempt=play.attempt,
                      announcement_id=play.announcement_id, item_id=play.item_id,
                      sha256=play.sha256, priority=play.priority, output=play.output,
                      scheduled_start=ms_iso(play.scheduled_start_ms), actual_start=ms_iso(play.actual_start_ms),
                      ended_at=ms_iso(play.ended_at_ms), start_offset_ms=offset, duration_ms=duration,
                      outcome=play.outcome, reason=play.reason)


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


@router.get("/api/v1/plays", response_model=list[PlayPublic])
def list_plays(
    session: SessionDep,
    _user: StaffDep,
    agent_id: str | None = None,
    zone: str | None = None,
    announcement_id: str | None = None,
    item_id: str | None = None,
    outcome: Literal["completed", "preempted", "stopped", "expired", "failed", "cut"] | None = None,
    since: Annotated[datetime | None, Query(description="scheduled start at or after")] = None,
    until: Annotated[datetime | None, Query(description="scheduled start before")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: a spreadsheet of every match")] = "json",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """Plays, newest scheduled first, filtered by agent, zone, announcement, item, outcome and time."""
    query = filtered_plays(session, PlayFilters(agent_id=agent_id, zone=zone, announcement_id=announcement_id,
                                                item_id=item_id, outcome=outcome, since=since, until=until))
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for play in session.scalars(query.limit(100_000)):
            row = play_public(play).model_dump(mode="json")
            writer.writerow({k: row.get(k) for k in _CSV_FIELDS})
        return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="proof-of-play.csv"'})
    return [play_public(p) for p in session.scalars(query.limit(limit).offset(offset))]


@router.get("/api/v1/reports/items/{item_id}")
def item_report(item_id: str, session: SessionDep, _user: StaffDep) -> ItemReport:
    """Per occurrence of an item: targets that reported it, how many played it in full, and the rest by outcome."""
    item = session.get(ScheduleItem, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule item {item_id!r}")
    final: dict[tuple[int, str], Play] = {}
    for play in session.scalars(select(Play).where(Play.item_id == item_id).order_by(Play.attempt)):
        final[(play.scheduled_start_ms, play.agent_id)] = play  # the last attempt tells how it ended
    by_start: dict[int, dict[str, Any]] = defaultdict(lambda: {"outcomes": defaultdict(int), "agents": {}})
    for (start, agent), play in final.items():
        entry = by_start[start]
        entry["outcomes"][play.outcome or "playing"] += 1
        entry["agents"][agent] = play.outcome or "playing"
    occurrences = [{"scheduled_start": ms_iso(start), "targets_reported": len(e["agents"]),
                    "played_in_full": e["outcomes"].get("completed", 0), "outcomes": dict(e["outcomes"]),
                    "agents": e["agents"]} for start, e in sorted(by_start.items())]
    return ItemReport(item_id=item.id, title=item.title, occurrences=occurrences)
