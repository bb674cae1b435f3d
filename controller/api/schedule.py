"""``/api/v1/schedule``: items (one-off and recurring), approvals, and what will play where."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import wards_of
from controller.api.city_schemas import CityItemCreate, CityItemPublic
from controller.api.city_views import city_item_public, run_schedule_work
from controller.api.deps import ApproverDep, DatabaseDep, OfficerDep, ScheduleDep, StaffDep, WindowsDep
from controller.api.errors import AUTHENTICATED, errors
from controller.api.schedule_schemas import (
    BlockedPublic,
    PlannedPlayPublic,
    RejectRequest,
    ScheduleItemCreate,
    ScheduleItemPublic,
    UpcomingPublic,
)
from controller.api.views import item_input, item_public
from controller.schedule.city_items import CityItems
from controller.storage.models import Device, ScheduleItem
from devices.protocol import now_ms

router = APIRouter(prefix="/api/v1/schedule", tags=["schedule"], responses=AUTHENTICATED)

# Shared with the upper level's source system (controller/api/source.py), so both answer alike.
_run = run_schedule_work
_city_public = city_item_public


@router.post("/items", status_code=status.HTTP_201_CREATED,
             responses=errors(404, e404="no such ward among the caller's"))
async def create_item(body: ScheduleItemCreate, db: DatabaseDep, schedule: ScheduleDep,
                      user: OfficerDep) -> ScheduleItemPublic:
    """Creates an item: speech is rendered now, conflicts refused with 409 unless ``queue`` is set."""
    return await _run(db, lambda s: item_public(schedule.create(s, item_input(body), user), s, schedule))


@router.get("/items")
async def list_items(db: DatabaseDep, schedule: ScheduleDep, user: StaffDep,
                     status_: Annotated[str | None, Query(alias="status")] = None,
                     ward: Annotated[str | None, Query(max_length=63)] = None) -> list[ScheduleItemPublic]:
    """Items of the caller's wards, newest first; ``?status=pending`` is the approval queue, ``?ward=`` one
    ward's items (a ward the caller cannot see has none)."""
    def work(session: Session) -> list[ScheduleItemPublic]:
        wards = wards_of(session, user)
        if ward is not None:
            wards = wards & {ward}
        query = select(ScheduleItem).where(ScheduleItem.ward_id.in_(list(wards))) \
            .order_by(ScheduleItem.created_at.desc())
        if status_:
            query = query.where(ScheduleItem.status == status_)
        return [item_public(r, session, schedule) for r in session.scalars(query.limit(500))]

    return await _run(db, work)


@router.get("/items/{item_id}", responses=errors(404))
async def get_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: StaffDep) -> ScheduleItemPublic:
    """One item (of the caller's wards)."""
    return await _run(db, lambda s: item_public(schedule.get(s, item_id, user), s, schedule))


@router.put("/items/{item_id}", responses=errors(404))
async def replace_item(item_id: str, body: ScheduleItemCreate, db: DatabaseDep, schedule: ScheduleDep,
                       user: OfficerDep) -> ScheduleItemPublic:
    """A new revision of an item; only the agents it touches get new windows."""
    return await _run(db, lambda s: item_public(schedule.replace(s, item_id, item_input(body), user), s, schedule))


@router.delete("/items/{item_id}", responses=errors(404))
async def cancel_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: OfficerDep) -> ScheduleItemPublic:
    """Cancels an item: it leaves every window; its history and proof of play stay."""
    return await _run(db, lambda s: item_public(schedule.cancel(s, item_id, user), s, schedule))


@router.post("/items/{item_id}/approve", responses=errors(404))
async def approve_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: ApproverDep) -> ScheduleItemPublic:
    """An approver lets a pending item go out."""
    return await _run(db, lambda s: item_public(schedule.decide(s, item_id, user, True), s, schedule))


@router.post("/items/{item_id}/reject", responses=errors(404))
async def reject_item(item_id: str, body: RejectRequest, db: DatabaseDep, schedule: ScheduleDep,
                      user: ApproverDep) -> ScheduleItemPublic:
    """An approver sends a pending item back, with the reason."""
    return await _run(db, lambda s: item_public(schedule.decide(s, item_id, user, False, body.reason), s,
                                                schedule))


@router.post("/city-items", status_code=status.HTTP_201_CREATED)
async def create_city_item(body: CityItemCreate, db: DatabaseDep, schedule: ScheduleDep,
                           user: OfficerDep) -> CityItemPublic:
    """An item of the city (or province) for chosen wards or all of them: one part per ward, each an item of
    that ward marked as coming from above. Officers or approvers of an upper unit only; an unknown ward is 422
    naming it. A part of normal priority waits for approval in a ward that approves the city's items; an
    emergency never waits."""
    city = CityItems(schedule)
    return await _run(db, lambda s: _city_public(city.create(s, item_input(body), body.wards, user), s, schedule))


@router.get("/city-items")
async def list_city_items(db: DatabaseDep, schedule: ScheduleDep, user: StaffDep) -> list[CityItemPublic]:
    """The city items of the units the caller holds a role on (a ward's staff see only their parts, in
    ``/items``), newest first."""
    city = CityItems(schedule)
    return await _run(db, lambda s: [_city_public(v, s, schedule) for v in city.visible(s, user)])


@router.get("/city-items/{item_id}", responses=errors(404))
async def get_city_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: StaffDep) -> CityItemPublic:
    """One city item with each ward's part."""
    city = CityItems(schedule)
    return await _run(db, lambda s: _city_public(city.get(s, item_id, user), s, schedule))


@router.put("/city-items/{item_id}", responses=errors(404))
async def replace_city_item(item_id: str, body: CityItemCreate, db: DatabaseDep, schedule: ScheduleDep,
                            user: OfficerDep) -> CityItemPublic:
    """A new revision of every ward's part (a ward added gets one, a ward left out has its part cancelled)."""
    city = CityItems(schedule)
    return await _run(db, lambda s: _city_public(city.replace(s, item_id, item_input(body), body.wards, user), s,
                                                 schedule))


@router.delete("/city-items/{item_id}", responses=errors(404))
async def cancel_city_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: OfficerDep) -> CityItemPublic:
    """Cancels a city item in every ward."""
    city = CityItems(schedule)
    return await _run(db, lambda s: _city_public(city.cancel(s, item_id, user), s, schedule))


@router.get("/upcoming")
async def upcoming(db: DatabaseDep, windows: WindowsDep, user: StaffDep,
                   hours: Annotated[int, Query(ge=1, le=14 * 24)] = 24,
                   agent_id: str | None = None, zone: str | None = None) -> UpcomingPublic:
    """What will play where in the next ``hours`` (approved items) on the caller's wards' speakers, and what
    the rules hold back."""
    def work(session: Session) -> list[str]:
        query = select(Device).where(Device.ward_id.in_(list(wards_of(session, user))))
        if agent_id is not None:
            query = query.where(Device.id == agent_id)
        return [d.id for d in session.scalars(query) if zone is None or zone in d.zones]

    agents = await _run(db, work)
    start = now_ms()
    end = start + hours * 3_600_000
    result, _saved = await asyncio.to_thread(windows.compute, start, end, agents)
    plays = [PlannedPlayPublic(agent_id=p.agent_id, play_id=p.play_id, item_id=p.item_id, title=p.title,
                               priority=p.priority.value, start=datetime.fromtimestamp(p.start_ms / 1000, UTC),
                               end=datetime.fromtimestamp(p.end_ms / 1000, UTC), volume=p.volume,
                               segments=[s.model_dump(mode="json") for s in p.segments])
             for per_agent in result.plays.values() for p in per_agent]
    plays.sort(key=lambda p: (p.start, p.agent_id))
    blocked = [BlockedPublic(agent_id=b.agent_id, item_id=b.item_id,
                             start=datetime.fromtimestamp(b.start_ms / 1000, UTC), reason=b.reason)
               for b in result.blocked]
    return UpcomingPublic.model_validate({"from": datetime.fromtimestamp(start / 1000, UTC),
                                          "until": datetime.fromtimestamp(end / 1000, UTC),
                                          "plays": plays, "blocked": blocked})
