"""``/api/v1/announcements``: text in, speech out to the targets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from controller.accounts.reach import check_ward, wards_of
from controller.accounts.scope import OutOfScope, check_target_names
from controller.api.city_schemas import CityAnnouncementCreate, CityAnnouncementPublic
from controller.api.city_views import (
    read_city_announcement,
    send_city_announcement,
    unprocessable,
)
from controller.api.deps import (
    AnnouncementsDep,
    ApproverDep,
    DatabaseDep,
    OfficerDep,
    SessionDep,
    SettingsDep,
    StaffDep,
)
from controller.api.errors import AUTHENTICATED, errors
from controller.api.schedule_schemas import RejectRequest
from controller.api.schemas import (
    AnnouncementAccepted,
    AnnouncementCreate,
    AnnouncementPublic,
    AnnouncementSummary,
    DeliveryPublic,
    ms_iso,
)
from controller.api.views import announcement_summary, media_public, play_public
from controller.broadcasts.announcements import InvalidAnnouncement
from controller.broadcasts.city_announcements import (
    AnnouncementForbidden,
    AnnouncementStateError,
    CityAnnouncements,
    with_counts,
)
from controller.broadcasts.wards import COMPOSER_ROLES, recent_in_wards, ward_for_broadcast
from controller.storage.models import Announcement, Delivery, MediaFile, Play

router = APIRouter(prefix="/api/v1/announcements", tags=["announcements"], responses=AUTHENTICATED)


@router.post("", status_code=status.HTTP_202_ACCEPTED,
             responses=errors(404, e404="no such ward among the caller's, or (to a caller of several wards) a "
                                        "target or recording that is not the ward's"))
async def create_announcement(body: AnnouncementCreate, announcements: AnnouncementsDep, db: DatabaseDep,
                              user: OfficerDep) -> AnnouncementAccepted:
    """Accepts an announcement; speech is rendered and sent in the background (poll GET for progress).

    It belongs to ``ward`` (or the caller's only ward); its targets and recording must be that ward's.
    """
    ward, hide = await run_in_threadpool(ward_for_broadcast, db, user, body.ward)
    try:
        check_target_names(user, body.target_names())
    except OutOfScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    try:
        accepted = await announcements.submit(body.text, body.target_names(), body.priority, body.start_at,
                                              user.id, body.recording, ward=ward, hide_unknown=hide)
    except InvalidAnnouncement as exc:
        raise unprocessable(exc.field, str(exc)) from None
    return AnnouncementAccepted(id=accepted.id, status="rendering", targets=accepted.targets)


@router.post("/city", status_code=status.HTTP_202_ACCEPTED)
async def create_city_announcement(body: CityAnnouncementCreate, announcements: AnnouncementsDep,
                                   user: OfficerDep) -> CityAnnouncementPublic:
    """An announcement of the city (or province) to chosen wards or all of them: one announcement per ward,
    each that ward's (``targets`` there: the agents it reaches). Officers or approvers of an upper unit only;
    an unknown ward is 422 naming it. Normal priority waits (``pending``) in a ward that approves the city's
    items, until its approver approves it; an emergency goes out at once in every chosen ward."""
    return await send_city_announcement(body, announcements, user, COMPOSER_ROLES)


@router.get("/city/{announcement_id}", responses=errors(404))
async def get_city_announcement(announcement_id: str, announcements: AnnouncementsDep, db: DatabaseDep,
                                user: StaffDep) -> CityAnnouncementPublic:
    """A city announcement with each ward's announcement and its status (city staff)."""
    return await read_city_announcement(db, announcements, announcement_id, user)


async def _decide(announcement_id: str, announcements: AnnouncementsDep, user: StaffDep, approve: bool,
                  reason: str = "") -> AnnouncementSummary:
    try:
        await CityAnnouncements(announcements).decide(announcement_id, user, approve, reason)
    except AnnouncementStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except AnnouncementForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None

    def summary() -> AnnouncementSummary:
        with announcements.db.session() as session:
            found = with_counts(session, announcement_id)
            return announcement_summary(*found).model_copy(update={"ward": found[0].ward_id})

    return await run_in_threadpool(summary)


@router.post("/{announcement_id}/approve", responses=errors(404, 409))
async def approve_announcement(announcement_id: str, announcements: AnnouncementsDep,
                               user: ApproverDep) -> AnnouncementSummary:
    """A ward's approver lets a city announcement held for the ward's approval go out now."""
    return await _decide(announcement_id, announcements, user, True)


@router.post("/{announcement_id}/reject", responses=errors(404, 409))
async def reject_announcement(announcement_id: str, body: RejectRequest, announcements: AnnouncementsDep,
                              user: ApproverDep) -> AnnouncementSummary:
    """A ward's approver refuses a city announcement held for the ward's approval, with the reason."""
    return await _decide(announcement_id, announcements, user, False, body.reason)


@router.get("")
def list_announcements(session: SessionDep, user: StaffDep,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       offset: Annotated[int, Query(ge=0)] = 0) -> list[AnnouncementSummary]:
    """The caller's wards' announcements, newest first, with a count of deliveries per state."""
    return [announcement_summary(a, counts).model_copy(update={"ward": a.ward_id})
            for a, counts in recent_in_wards(session, wards_of(session, user), limit, offset)]


@router.get("/{announcement_id}", responses=errors(404))
def get_announcement(announcement_id: str, session: SessionDep, settings: SettingsDep,
                     user: StaffDep) -> AnnouncementPublic:
    """An announcement (of the caller's wards) with each target's delivery status and proof of play."""
    ann = session.get(Announcement, announcement_id)
    if ann is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no announcement {announcement_id!r}")
    check_ward(session, user, ann.ward_id, None, f"no announcement {announcement_id!r}")
    media = session.get(MediaFile, ann.media_sha256) if ann.media_sha256 else None
    # Deliveries before plays: a read-only request reads outside one snapshot (SQLite starts a transaction at
    # the first write), and a play's end is committed with its delivery's final state, so reading the
    # deliveries first never shows a delivery played beside a play that has not ended yet.
    rows = list(session.scalars(select(Delivery).where(Delivery.announcement_id == ann.id).order_by(Delivery.id)))
    plays = {(p.agent_id, p.play_id): p for p in session.scalars(
        select(Play).where(Play.announcement_id == ann.id).order_by(Play.attempt))}
    deliveries = [
        DeliveryPublic(agent_id=d.agent_id, command_id=d.command_id, status=d.status, error=d.error,
                       updated_at=d.updated_at,
                       play=play_public(p) if (p := plays.get((d.agent_id, d.command_id))) else None)
        for d in rows
    ]
    base = settings.resolved_public_url()
    return AnnouncementPublic(
        id=ann.id, text=ann.text, spoken_text=ann.spoken_text, priority=ann.priority, targets=list(ann.targets),
        status=ann.status,
        error=ann.error, requested_start=ms_iso(ann.requested_start_ms), start_at=ms_iso(ann.start_ms),
        engine=ann.engine, created_at=ann.created_at, deliveries=deliveries, ward=ann.ward_id,
        media=media_public(media, base) if media else None)
