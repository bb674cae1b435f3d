"""``/api/v1/plays`` and ``/api/v1/reports``: proof of play — what each agent reports it actually played."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import select

from controller.accounts.reach import check_ward, wards_of
from controller.api.deps import SessionDep, StaffDep
from controller.api.errors import AUTHENTICATED, errors
from controller.api.params import IsoDateTime
from controller.api.schedule_schemas import ItemReport
from controller.api.schemas import PlayPublic, ms_iso
from controller.api.views import play_public
from controller.broadcasts.proof_of_play import PlayFilters, filtered_plays
from controller.storage.models import Play, ScheduleItem

router = APIRouter(tags=["plays"], responses=AUTHENTICATED)

_CSV_FIELDS = ("agent_id", "play_id", "attempt", "announcement_id", "item_id", "sha256", "priority", "output",
               "scheduled_start", "actual_start", "ended_at", "start_offset_ms", "duration_ms", "outcome", "reason",
               "ward")


@router.get("/api/v1/plays", response_model=list[PlayPublic],
            responses={200: {"content": {"text/csv": {}}, "description": "The plays; format=csv: a CSV file."}})
def list_plays(
    session: SessionDep,
    user: StaffDep,
    agent_id: str | None = None,
    zone: str | None = None,
    announcement_id: str | None = None,
    item_id: str | None = None,
    outcome: Literal["completed", "preempted", "stopped", "expired", "failed", "cut"] | None = None,
    since: Annotated[IsoDateTime | None, Query(description="scheduled start at or after")] = None,
    until: Annotated[IsoDateTime | None, Query(description="scheduled start before")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: a spreadsheet of every match")] = "json",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """Plays of the caller's wards, newest scheduled first, filtered by agent, zone, announcement, item,
    outcome and time."""
    query = filtered_plays(session, PlayFilters(agent_id=agent_id, zone=zone, announcement_id=announcement_id,
                                                item_id=item_id, outcome=outcome, since=since, until=until,
                                                wards=wards_of(session, user)))
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for play in session.scalars(query.limit(100_000)):
            row = _public(play).model_dump(mode="json")
            writer.writerow({k: row.get(k) for k in _CSV_FIELDS})
        return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="proof-of-play.csv"'})
    return [_public(p) for p in session.scalars(query.limit(limit).offset(offset))]


def _public(play: Play) -> PlayPublic:
    return play_public(play).model_copy(update={"ward": play.ward_id})


@router.get("/api/v1/reports/items/{item_id}", responses=errors(404))
def item_report(item_id: str, session: SessionDep, user: StaffDep) -> ItemReport:
    """Per occurrence of an item (of the caller's wards): targets that reported it, how many played it in
    full, and the rest by outcome."""
    item = session.get(ScheduleItem, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule item {item_id!r}")
    check_ward(session, user, item.ward_id, None, f"no schedule item {item_id!r}")
    final: dict[tuple[int, str], Play] = {}
    for play in session.scalars(select(Play).where(Play.item_id == item_id, Play.ward_id.in_(wards_of(session, user)))
                                .order_by(Play.attempt)):
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
