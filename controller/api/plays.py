"""``/api/v1/plays``: proof of play — what each agent reports it actually played."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from controller.api.deps import SessionDep, StaffDep
from controller.api.schemas import PlayPublic, ms_iso
from controller.models import Play

router = APIRouter(prefix="/api/v1/plays", tags=["plays"])


def play_public(play: Play) -> PlayPublic:
    """The public view of a play."""
    offset = None if play.actual_start_ms is None else play.actual_start_ms - play.scheduled_start_ms
    return PlayPublic(agent_id=play.agent_id, play_id=play.play_id, announcement_id=play.announcement_id,
                      sha256=play.sha256, priority=play.priority, output=play.output,
                      scheduled_start=ms_iso(play.scheduled_start_ms), actual_start=ms_iso(play.actual_start_ms),
                      ended_at=ms_iso(play.ended_at_ms), start_offset_ms=offset, outcome=play.outcome,
                      reason=play.reason)


@router.get("")
def list_plays(
    session: SessionDep,
    _user: StaffDep,
    agent_id: str | None = None,
    announcement_id: str | None = None,
    since: Annotated[datetime | None, Query(description="scheduled start at or after")] = None,
    until: Annotated[datetime | None, Query(description="scheduled start before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PlayPublic]:
    """Plays, newest scheduled first, filtered by agent, announcement and time."""
    query = select(Play)
    if agent_id:
        query = query.where(Play.agent_id == agent_id)
    if announcement_id:
        query = query.where(Play.announcement_id == announcement_id)
    if since:
        query = query.where(Play.scheduled_start_ms >= int(since.timestamp() * 1000))
    if until:
        query = query.where(Play.scheduled_start_ms < int(until.timestamp() * 1000))
    query = query.order_by(Play.scheduled_start_ms.desc(), Play.id.desc()).limit(limit).offset(offset)
    return [play_public(p) for p in session.scalars(query)]
