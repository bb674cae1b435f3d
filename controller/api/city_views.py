"""What the city's broadcasts look like in the API, and how schedule errors become HTTP ones: shared by the
city staff's routes (``/api/v1/schedule``, ``/api/v1/announcements``) and the upper level's source system
(``/api/v1/source``), so both answer alike."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from controller.accounts.scope import OutOfScope, check_target_names
from controller.api.city_schemas import CityAnnouncementCreate, CityAnnouncementPublic, CityItemPublic, CityPartPublic
from controller.api.schedule_schemas import ConflictPublic
from controller.api.schemas import PlayPublic
from controller.api.views import item_public
from controller.broadcasts.announcements import AnnouncementService, InvalidAnnouncement
from controller.broadcasts.city_announcements import CityAnnouncements, CitySent
from controller.broadcasts.from_above import CityInputInvalid
from controller.schedule.city_items import CityItem
from controller.schedule.items import (
    ItemConflicts,
    ItemForbidden,
    ItemInvalid,
    ItemNotFound,
    ItemStateError,
    ScheduleService,
)
from controller.storage.engine import Database
from controller.storage.models import User

_T = TypeVar("_T")

#: The columns of a proof-of-play CSV of a city broadcast (as ``/api/v1/plays?format=csv`` names them).
PLAY_CSV_FIELDS = ("ward", "agent_id", "announcement_id", "item_id", "play_id", "attempt", "priority",
                   "scheduled_start", "actual_start", "ended_at", "start_offset_ms", "duration_ms", "outcome",
                   "reason")


def unprocessable(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (``loc`` naming the body field), so clients parse one
    format."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": ["body", field], "msg": message, "type": "value_error"}])


async def run_schedule_work(db: Database, work: Callable[[Session], _T]) -> _T:
    """Runs ``work`` in a worker thread inside one committed session, turning schedule errors into HTTP ones:
    422 (bad input, ``loc`` naming the field), 409 (a conflict, listed; or the wrong state), 404, 403."""
    def in_session() -> _T:
        with db.session() as session:
            return work(session)

    try:
        return await asyncio.to_thread(in_session)
    except (ItemInvalid, CityInputInvalid) as exc:
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
    except (ItemForbidden, OutOfScope) as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except ItemStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


def city_item_public(view: CityItem, session: Session, schedule: ScheduleService) -> CityItemPublic:
    """A city item and each ward's part as the API shows them."""
    parent = view.parent
    creator = session.get(User, parent.created_by) if parent.created_by is not None else None
    return CityItemPublic(id=parent.id, unit=parent.unit_id, wards=list(parent.wards), all_wards=parent.all_wards,
                          title=parent.title, priority=parent.priority, status=parent.status,
                          revision=parent.revision, created_by=creator.username if creator else None,
                          created_at=parent.created_at, items=[item_public(c, session, schedule) for c in view.parts])


def city_announcement_public(sent: CitySent) -> CityAnnouncementPublic:
    """A city announcement and each ward's announcement as the API shows them."""
    parent = sent.parent
    return CityAnnouncementPublic(id=parent.id, unit=parent.unit_id, wards=list(parent.wards),
                                  all_wards=parent.all_wards, priority=parent.priority, created_at=parent.created_at,
                                  announcements=[CityPartPublic(ward=p.ward, announcement_id=p.announcement_id,
                                                                status=p.status, targets=p.agents)
                                                 for p in sent.parts])


async def send_city_announcement(body: CityAnnouncementCreate, service: AnnouncementService, user: User,
                                 roles: Collection[str]) -> CityAnnouncementPublic:
    """Checks the sender's zone limit and sends a city announcement as the sender's ``roles`` allow (city
    staff and the source system alike): 403 beyond their zones, 422 naming a bad ward, target or recording."""
    try:
        check_target_names(user, body.target_names())
    except OutOfScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    try:
        sent = await CityAnnouncements(service).submit(body.text, body.target_names(), body.priority,
                                                       body.start_at, user, body.recording, body.wards, roles=roles)
    except (InvalidAnnouncement, CityInputInvalid) as exc:
        raise unprocessable(exc.field, str(exc)) from None
    return city_announcement_public(sent)


async def read_city_announcement(db: Database, service: AnnouncementService, announcement_id: str,
                                 user: User) -> CityAnnouncementPublic:
    """A city announcement the caller sees, with each ward's part (404 otherwise)."""
    def work() -> CityAnnouncementPublic:
        with db.session() as session:
            return city_announcement_public(CityAnnouncements(service).get(session, announcement_id, user))

    return await asyncio.to_thread(work)


def plays_csv(plays: list[PlayPublic]) -> bytes:
    """Proof of play as a spreadsheet (UTF-8 with a BOM, so Excel shows the Vietnamese names)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PLAY_CSV_FIELDS)
    writer.writeheader()
    for play in plays:
        row = play.model_dump(mode="json")
        writer.writerow({k: row.get(k) for k in PLAY_CSV_FIELDS})
    return out.getvalue().encode("utf-8-sig")
