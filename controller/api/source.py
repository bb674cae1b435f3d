"""``/api/v1/source``: the API of the upper level's source system (hệ thống thông tin nguồn cấp tỉnh,
TT 39/2020).

The province's (or city's) system pushes an item — text, a recording, or a relay of its station — to chosen
wards or all of them, and reads back the proof of play and the monthly figures. Its account holds only the
``source`` role on the city or province unit, so it reaches the wards under it and nothing else: every staff
route and the console refuse it. Admins may use these routes too. A push is a city item or city announcement
(docs/wards.md), one part per ward, with every per-ward rule applied unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from controller.api import reports_monthly
from controller.api.city_schemas import (
    CityAnnouncementCreate,
    CityAnnouncementPublic,
    CityItemCreate,
    CityItemPublic,
)
from controller.api.city_views import (
    city_item_public,
    plays_csv,
    read_city_announcement,
    run_schedule_work,
    send_city_announcement,
)
from controller.api.deps import (
    AnnouncementsDep,
    DatabaseDep,
    MediaStoreDep,
    ScheduleDep,
    SessionDep,
    SettingsDep,
    SpeechDep,
    require_roles,
)
from controller.api.errors import AUTHENTICATED, errors
from controller.api.media import receive_recording
from controller.api.params import MONTH_PATTERN
from controller.api.schemas import MediaPublic, PlayPublic
from controller.api.views import item_input, media_public, play_public
from controller.broadcasts.source_pushes import SOURCE_ROLES, BroadcastPlays, broadcast_plays, source_wards, withdraw
from controller.schedule.city_items import CityItems
from controller.storage.models import SOURCE_ROLE, User

router = APIRouter(prefix="/api/v1/source", tags=["upper level (cấp trên)"], responses=AUTHENTICATED)

#: The source system's account, or an admin.
SourceDep = Annotated[User, Depends(require_roles(SOURCE_ROLE))]


_PUSH_403 = ("the account holds neither source nor admin, holds them on no city or province, or its zone "
             "limit does not cover the targets")

_ITEM_EXAMPLES: dict[str, Any] = {
    "flood_warning": {
        "summary": "A flood warning for two wards, read aloud",
        "description": "Spoken by the controller's voice on every speaker of both wards, at once priority.",
        "value": {"title": "Cảnh báo lũ trên sông Bình Phú", "priority": "emergency",
                  "wards": ["binh-phu", "an-lac"], "targets": {"all": True},
                  "content": [{"kind": "tts", "text": "Ủy ban nhân dân tỉnh thông báo: mực nước sông Bình Phú "
                                                      "đang lên nhanh. Bà con vùng trũng khẩn trương di dời "
                                                      "người và tài sản đến nơi an toàn."}],
                  "start": "2026-10-14T17:30:00"}},
    "recording": {
        "summary": "A recorded bulletin for one ward, every Monday",
        "description": "The recording was uploaded first (POST /api/v1/source/media) and is named by its sha256.",
        "value": {"title": "Bản tin pháp luật", "wards": ["binh-phu"], "targets": {"all": True},
                  "content": [{"kind": "media", "sha256": "9f2c" + "0" * 60, "title": "Bản tin tuần"}],
                  "start": "2026-03-02T06:30:00", "rrule": "FREQ=WEEKLY;BYDAY=MO"}},
    "relay": {
        "summary": "A relay of the province's radio for 30 minutes at 18:00, in every ward",
        "value": {"title": "Tiếp sóng Đài Phát thanh tỉnh", "priority": "priority", "wards": "all",
                  "targets": {"all": True},
                  "content": [{"kind": "relay", "url": "https://radio.tinh.gov.vn/live.mp3", "duration_s": 1800,
                               "title": "Thời sự tối"}],
                  "start": "2026-03-02T18:00:00"}},
}

_ANNOUNCEMENT_EXAMPLES: dict[str, Any] = {
    "text_to_all": {
        "summary": "A text announcement to every ward, now",
        "value": {"text": "Ủy ban nhân dân tỉnh thông báo lịch cắt điện ngày mai từ 7 giờ đến 11 giờ.",
                  "priority": "normal", "targets": {"all": True}, "wards": "all"}},
    "emergency_two_wards": {
        "summary": "An emergency to two wards",
        "value": {"text": "Cảnh báo lũ quét. Bà con không đi qua ngầm tràn.", "priority": "emergency",
                  "targets": {"all": True}, "wards": ["binh-phu", "an-lac"]}},
    "recording_later": {
        "summary": "A recording at a set time",
        "value": {"text": "Bản tin phòng chống dịch", "recording": "9f2c" + "0" * 60, "priority": "normal",
                  "targets": {"all": True}, "wards": ["binh-phu"], "start_at": "2026-03-02T17:00:00+07:00"}},
}


class BroadcastPlaysPublic(BaseModel):
    """A pushed item or announcement and every play of its wards' parts (proof of play)."""

    id: str
    kind: str = Field(description="schedule (an item) or announcement")
    unit: str = Field(description="the city or province it came from")
    title: str
    wards: list[str]
    plays: list[PlayPublic] = Field(description="every attempt of every play, by ward, agent and scheduled start; "
                                                "outcome completed is played in full, null still playing")


def _plays_public(found: BroadcastPlays) -> BroadcastPlaysPublic:
    parent = found.parent
    return BroadcastPlaysPublic(id=parent.id, kind=parent.kind, unit=parent.unit_id, title=parent.title,
                                wards=list(parent.wards),
                                plays=[play_public(p).model_copy(update={"ward": p.ward_id}) for p in found.plays])


@router.post("/items", status_code=status.HTTP_201_CREATED, summary="Push a scheduled item to wards",
             responses=errors(403, 409, 422, e403=_PUSH_403,
                              e409="overlaps items of the same level in a ward (the conflicts are listed); "
                                   'set "queue": true to play after them',
                              e422="an unknown ward (named), targets outside the wards, a bad recording or "
                                   "relay, a malformed time or rule"))
async def push_item(body: Annotated[CityItemCreate, Body(openapi_examples=_ITEM_EXAMPLES)], db: DatabaseDep,
                    schedule: ScheduleDep, user: SourceDep) -> CityItemPublic:
    """An item for chosen wards (or ``"all"``): text read aloud, a recording uploaded here, or a relay of the
    province's station, once or on a rule. Each ward gets its own part, marked as from above (cấp trên);
    a ward that approves the upper level's items holds a normal one for its approver, an emergency never
    waits. The answer lists each ward's part with its status and next starts."""
    city = CityItems(schedule)
    return await run_schedule_work(db, lambda s: city_item_public(
        city.create(s, item_input(body), body.wards, user, roles=SOURCE_ROLES), s, schedule))


@router.get("/items/{item_id}", summary="A pushed item", responses=errors(404, e404="no such item"))
async def get_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: SourceDep) -> CityItemPublic:
    """The item with each ward's part and its status (approved, pending, cancelled…)."""
    city = CityItems(schedule)
    return await run_schedule_work(db, lambda s: city_item_public(city.get(s, item_id, user), s, schedule))


@router.delete("/items/{item_id}", summary="Withdraw a pushed item",
               responses=errors(403, 404, e403="not pushed by this system (the city's staff change it), or "
                                               "no source or admin role",
                                e404="no such item"))
async def withdraw_item(item_id: str, db: DatabaseDep, schedule: ScheduleDep, user: SourceDep) -> CityItemPublic:
    """Cancels the item in every ward: it leaves every speaker's schedule; what already played stays in the
    proof of play."""
    city = CityItems(schedule)
    return await run_schedule_work(db, lambda s: city_item_public(withdraw(city, s, item_id, user), s, schedule))


@router.post("/announcements", status_code=status.HTTP_202_ACCEPTED, summary="Push an announcement to wards",
             responses=errors(403, 422, e403=_PUSH_403,
                              e422="an unknown ward (named), targets outside the wards, an unknown recording, "
                                   "text too long"))
async def push_announcement(body: Annotated[CityAnnouncementCreate, Body(openapi_examples=_ANNOUNCEMENT_EXAMPLES)],
                            announcements: AnnouncementsDep, user: SourceDep) -> CityAnnouncementPublic:
    """Text (or a recording) now, or at ``start_at``, to chosen wards or ``"all"`` (wards with no speakers
    yet are left out of "all"): one announcement per ward, rendered and sent in the background. Read the
    proof of play with ``GET /api/v1/source/broadcasts/{id}/plays``."""
    return await send_city_announcement(body, announcements, user, SOURCE_ROLES)


@router.get("/announcements/{announcement_id}", summary="A pushed announcement",
            responses=errors(404, e404="no such announcement"))
async def get_announcement(announcement_id: str, announcements: AnnouncementsDep, db: DatabaseDep,
                           user: SourceDep) -> CityAnnouncementPublic:
    """The announcement with each ward's part and its status (rendering, sent, pending, rejected…)."""
    return await read_city_announcement(db, announcements, announcement_id, user)


@router.post("/media", status_code=status.HTTP_201_CREATED, summary="Upload a recording",
             responses=errors(413, 415, 422, e413="larger than the site's upload limit",
                              e415="not one audio recording",
                              e422="an empty body, or audio that could not be processed"))
async def upload_recording(request: Request, media: MediaStoreDep, speech: SpeechDep, settings: SettingsDep,
                           db: DatabaseDep, user: SourceDep) -> MediaPublic:
    """A recording as the raw request body (MP3, Ogg, WAV, FLAC or M4A; any Content-Type), normalised like
    speech and stored once by content. It belongs to every ward the system reaches, so a push to any of them
    may play it (``content`` of an item: ``{"kind": "media", "sha256": …}``, or ``recording`` of an
    announcement)."""
    def owners() -> list[str]:
        with db.session() as session:
            return source_wards(session, user)

    stored = await receive_recording(request, media, speech, await run_in_threadpool(owners))
    return media_public(stored, settings.resolved_public_url())


@router.get("/broadcasts/{broadcast_id}/plays", response_model=BroadcastPlaysPublic,
            summary="Proof of play of a pushed item or announcement",
            responses={**errors(404, e404="no such item or announcement"),
                       200: {"content": {"text/csv": {}}, "description": "the plays (JSON, or CSV with format=csv)"}})
def plays(broadcast_id: str, session: SessionDep, user: SourceDep,
          format: Annotated[Literal["json", "csv"], Query(description="csv: one row per play")] = "json",
          ) -> BroadcastPlaysPublic | Response:
    """Every play of the broadcast's wards' parts as the speakers reported it: ward, agent, scheduled and
    actual start, end, outcome (``completed`` = played in full; ``preempted``, ``expired``, ``failed``…) and
    the reason. ``broadcast_id`` is the id ``POST /items`` or ``POST /announcements`` answered."""
    found = _plays_public(broadcast_plays(session, user, broadcast_id))
    if format == "csv":
        return Response(plays_csv(found.plays), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="proof-of-play-{broadcast_id}.csv"',
            "Cache-Control": "no-store"})
    return found


@router.get("/reports/monthly", response_model=reports_monthly.MonthlyReport, summary="A ward's monthly figures",
            responses={**errors(404, 422, 503, e404="no such ward among the system's",
                                 e422="a malformed month, or no ward named (the system reaches several)",
                                 e503="the PDF's font is not installed"),
                       200: {"content": {"text/csv": {}, "application/pdf": {}}}})
def monthly_figures(
    session: SessionDep, settings: SettingsDep, user: SourceDep,
    ward: Annotated[str | None, Query(max_length=63, description="a ward under the system's units")] = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM in the site's time zone; the "
                                                                 "current month when left out")] = None,
    format: Annotated[Literal["json", "csv", "pdf"], Query(description="csv: one row; pdf: an A4 page")] = "json",
    lang: Annotated[Literal["vi", "en"], Query(description="the PDF's language")] = "vi",
) -> reports_monthly.MonthlyReport | Response:
    """The figures a ward reports upward for a month (as ``/api/v1/reports/monthly`` gives its staff):
    broadcasts and their hours by priority and source, speakers in service and their availability, faults
    and the time to repair them."""
    return reports_monthly.monthly_report(session, settings, user, ward, month, format, lang)


@router.get("/reports/city", response_model=reports_monthly.CityReport, summary="Every ward's monthly figures",
            responses={**errors(422, e422="a malformed month"), 200: {"content": {"text/csv": {}}}})
def city_figures(
    session: SessionDep, settings: SettingsDep, user: SourceDep,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM in the site's time zone; the "
                                                                 "current month when left out")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: one row per ward")] = "json",
) -> reports_monthly.CityReport | Response:
    """The month's figures of every ward under the system's units, one entry (or CSV row) per ward."""
    return reports_monthly.city_report(session, settings, user, month, format)
