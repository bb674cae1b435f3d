"""``/api/v1/schedule``: items (one-off and recurring), approvals, and what will play where."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.api.deps import ApproverDep, ControllerDep, OfficerDep, StaffDep, check_zone_scope
from controller.api.schemas import (
    BlockedPublic,
    ConflictPublic,
    PlannedPlayPublic,
    RejectRequest,
    ScheduleItemCreate,
    ScheduleItemPublic,
    UpcomingPublic,
    ms_iso,
)
from controller.models import Device, ScheduleItem, User
from controller.runtime import Controller
from controller.schedule_items import (
    ItemConflicts,
    ItemForbidden,
    ItemInput,
    ItemInvalid,
    ItemNotFound,
    ItemStateError,
)
from devices.protocol import now_ms

router = APIRouter(prefix="/api/v1/schedule", tags=["schedule"])

_T = TypeVar("_T")


def _local(value: str | None, controller: Controller) -> datetime | None:
    """Stored wall-clock text → an aware datetime in the site's zone."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=controller.settings.tz)


def item_public(row: ScheduleItem, session: Session, controller: Controller) -> ScheduleItemPublic:
    """The public view of an item, with the names of the people involved and its next starts."""
    names = {u.id: u.username for u in session.scalars(
        select(User).where(User.id.in_([i for i in (row.created_by, row.updated_by, row.decided_by) if i])))}
    start = _local(row.start_local, controller)
    assert start is not None
    return ScheduleItemPublic(
        id=row.id, revision=row.revision, title=row.title, priority=row.priority, content=list(row.content),
        segments=list(row.segments), duration_ms=sum(int(s["duration_ms"]) for s in row.segments),
        targets=dict(row.targets), timezone=controller.settings.timezone, start=start, rrule=row.rrule,
        until=_local(row.until_local, controller), exdates=[_local(x, controller) for x in row.exdates],  # type: ignore[misc]
        queue=row.queue, status=row.status, rejection_reason=row.rejection_reason,
        created_by=names.get(row.created_by or 0), updated_by=names.get(row.updated_by or 0),
        decided_by=names.get(row.decided_by or 0), decided_at=row.decided_at, created_at=row.created_at,
        updated_at=row.updated_at,
        next_starts=[d for d in (ms_iso(ms) for ms in controller.schedule.next_starts(row)) if d is not None])


def _input(body: ScheduleItemCreate) -> ItemInput:
    return ItemInput(title=body.title, priority=body.priority,
                     content=[c.model_dump(mode="json") for c in body.content],
                     targets=body.targets.model_dump(mode="json"), start=body.start, rrule=body.rrule,
                     until=body.until, exdates=list(body.exdates), queue=body.queue)


async def _run(controller: Controller, work: Callable[[Session], _T]) -> _T:
    """Runs ``work`` in a worker thread inside one committed session, turning service errors into HTTP ones."""
    def in_session() -> _T:
        with controller.db.session() as session:
            return work(session)

    try:
        return await asyncio.to_thread(in_session)
    except ItemInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", *exc.field.split(".")], "msg": str(exc), "type": "value_error"}]) \
            from None
    except ItemConflicts as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, {
            "message": "overlaps items of the same level on the same speakers; change the time, or set "
                       "\"queue\": true to play after them",
            "conflicts": [ConflictPublic(item_id=c.item_id, title=c.title, agent_id=c.agent_id,
                                         start=datetime.fromtimestamp(c.start_ms / 1000, UTC),
                                         other_start=datetime.fromtimestamp(c.other_start_ms / 1000, UTC),
                                         other_end=datetime.fromtimestamp(c.other_end_ms / 1000, UTC)
                                         ).model_dump(mode="json") for c in exc.conflicts]}) from None
    except ItemNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule item {exc}") from None
    except ItemForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except ItemStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(body: ScheduleItemCreate, controller: ControllerDep, user: OfficerDep) -> ScheduleItemPublic:
    """Creates an item: speech is rendered now, conflicts refused with 409 unless ``queue`` is set."""
    check_zone_scope(user, body.targets.all, list(body.targets.zones), list(body.targets.agents))
    return await _run(controller, lambda s: item_public(
        controller.schedule.create(s, _input(body), user), s, controller))


@router.get("/items")
async def list_items(controller: ControllerDep, _user: StaffDep,
                     status_: Annotated[str | None, Query(alias="status")] = None) -> list[ScheduleItemPublic]:
    """Items, newest first; ``?status=pending`` is the approval queue."""
    def work(session: Session) -> list[ScheduleItemPublic]:
        query = select(ScheduleItem).order_by(ScheduleItem.created_at.desc())
        if status_:
            query = query.where(ScheduleItem.status == status_)
        return [item_public(r, session, controller) for r in session.scalars(query.limit(500))]

    return await _run(controller, work)


@router.get("/items/{item_id}")
async def get_item(item_id: str, controller: ControllerDep, _user: StaffDep) -> ScheduleItemPublic:
    """One item."""
    return await _run(controller, lambda s: item_public(controller.schedule.get(s, item_id), s, controller))


@router.put("/items/{item_id}")
async def replace_item(item_id: str, body: ScheduleItemCreate, controller: ControllerDep,
                       user: OfficerDep) -> ScheduleItemPublic:
    """A new revision of an item; only the agents it touches get new windows."""
    check_zone_scope(user, body.targets.all, list(body.targets.zones), list(body.targets.agents))
    return await _run(controller, lambda s: item_public(
        controller.schedule.replace(s, item_id, _input(body), user), s, controller))


async def _check_item_scope(controller: Controller, item_id: str, user: User) -> None:
    """403 when a user limited to some zones acts on an item that reaches beyond them (as creating it would)."""
    if not user.zones or "admin" in user.role_set:
        return
    targets = await _run(controller, lambda s: dict(controller.schedule.get(s, item_id).targets))
    check_zone_scope(user, bool(targets.get("all")), list(targets.get("zones") or []),
                     list(targets.get("agents") or []))


@router.delete("/items/{item_id}")
async def cancel_item(item_id: str, controller: ControllerDep, user: OfficerDep) -> ScheduleItemPublic:
    """Cancels an item: it leaves every window; its history and proof of play stay."""
    await _check_item_scope(controller, item_id, user)
    return await _run(controller, lambda s: item_public(
        controller.schedule.cancel(s, item_id, user), s, controller))


@router.post("/items/{item_id}/approve")
async def approve_item(item_id: str, controller: ControllerDep, user: ApproverDep) -> ScheduleItemPublic:
    """An approver lets a pending item go out."""
    await _check_item_scope(controller, item_id, user)
    return await _run(controller, lambda s: item_public(
        controller.schedule.decide(s, item_id, user, True), s, controller))


@router.post("/items/{item_id}/reject")
async def reject_item(item_id: str, body: RejectRequest, controller: ControllerDep,
                      user: ApproverDep) -> ScheduleItemPublic:
    """An approver sends a pending item back, with the reason."""
    await _check_item_scope(controller, item_id, user)
    return await _run(controller, lambda s: item_public(
        controller.schedule.decide(s, item_id, user, False, body.reason), s, controller))


@router.get("/upcoming")
async def upcoming(controller: ControllerDep, _user: StaffDep,
                   hours: Annotated[int, Query(ge=1, le=14 * 24)] = 24,
                   agent_id: str | None = None, zone: str | None = None) -> UpcomingPublic:
    """What will play where in the next ``hours`` (approved items), and what the rules hold back."""
    def work(session: Session) -> list[str] | None:
        if zone is None:
            return None if agent_id is None else [agent_id]
        return [d.id for d in session.scalars(select(Device)) if zone in d.zones]

    agents = await _run(controller, work)
    start = now_ms()
    end = start + hours * 3_600_000
    result, _saved = await asyncio.to_thread(controller.windows.compute, start, end, agents)
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
