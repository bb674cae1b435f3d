"""``/console/announcements``: compose (listen first), send now or schedule, follow delivery, approve.

Every change goes through the services the API's routes call too (announcements, the schedule service,
speech previews), so validation, zone scope, approval rules and the audit log are the same as for
scripts. The console adds what a person needs on top: messages in their language next to the field, and
the common recurrences as plain choices instead of an RRULE.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.speech import SpeechError
from controller.accounts.reach import wards_of
from controller.accounts.scope import OutOfScope, check_target_names
from controller.api.deps import (
    AnnouncementsDep,
    DatabaseDep,
    ScheduleDep,
    SessionDep,
    SettingsDep,
    SpeechDep,
)
from controller.api.schedule_schemas import RejectRequest, ScheduleItemCreate, ScheduleItemPublic
from controller.api.schemas import AnnouncementCreate
from controller.api.views import item_input, item_public, preview_public
from controller.broadcasts.announcements import ZONE_PREFIX, InvalidAnnouncement, normalize_text, split_targets
from controller.broadcasts.city_announcements import CityAnnouncements
from controller.broadcasts.from_above import CityInputInvalid, WardChoice
from controller.broadcasts.speech_preview import PreviewRefused, render_preview
from controller.broadcasts.wards import recent_in_wards, ward_for_broadcast
from controller.schedule.city_items import CityItems
from controller.schedule.items import (
    ItemConflicts,
    ItemForbidden,
    ItemInvalid,
    ItemNotFound,
    ItemStateError,
    ScheduleService,
)
from controller.storage.engine import Database
from controller.storage.models import Announcement, ScheduleItem, User
from controller.web.announcement_form import (
    DAY_LABELS,
    REPEAT_LABELS,
    WEEKDAYS,
    WHEN_LABELS,
    ComposeForm,
    Options,
    blank_values,
    check_form,
    form_values,
    item_title,
    load_options,
    options_for,
    refusal_errors,
)
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.session import ConsoleApproverDep, ConsoleOfficerDep, ConsoleUserDep
from controller.web.templating import PRIORITY_LABELS, render

router = APIRouter(prefix="/console", include_in_schema=False)

#: How many recent announcements and schedule items the list shows.
RECENT = 20
#: The htmx event (``HX-Trigger``) that makes the page fetch its lists again after the user's own change.
REFRESH_EVENT = "lp-announcements"
#: Roles that may compose (the API's OfficerDep) and approve (ApproverDep).
COMPOSERS = frozenset({"officer", "approver", "admin"})
APPROVERS = frozenset({"approver", "admin"})

ANNOUNCEMENT_STATUS: dict[str, str] = {
    "rendering": N_("Preparing the speech"),
    "sent": N_("Sent"),
    "failed": N_("Failed"),
}
DELIVERY_STATUS: dict[str, str] = {
    "queued": N_("Waiting to send"),
    "sent": N_("Sent"),
    "accepted": N_("Received"),
    "playing": N_("Playing"),
    "played": N_("Played"),
    "preempted": N_("Interrupted"),
    "stopped": N_("Stopped"),
    "expired": N_("Expired"),
    "failed": N_("Failed"),
    "rejected": N_("Refused by the speaker"),
}
ITEM_STATUS: dict[str, str] = {
    "pending": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
}
#: Delivery states shown as bad news.
_BAD_DELIVERY = frozenset({"failed", "expired", "rejected"})

def _compose_context(values: dict[str, Any], errors: dict[str, list[str]], options: Options,
                     notice: str | None = None) -> dict[str, Any]:
    return {"values": values, "errors": errors, "options": options, "notice": notice,
            "priority_labels": PRIORITY_LABELS, "when_labels": WHEN_LABELS, "repeat_labels": REPEAT_LABELS,
            "day_labels": DAY_LABELS}


def _summary(announcement: Announcement, deliveries: dict[str, int]) -> dict[str, Any]:
    zones, agents = split_targets(list(announcement.targets))
    return {"id": announcement.id, "text": announcement.text, "priority": announcement.priority,
            "status": announcement.status, "error": announcement.error, "created_at": announcement.created_at,
            "everyone": "all" in announcement.targets, "zones": zones,
            "agents": [a for a in agents if a != "all"], "deliveries": sorted(deliveries.items())}


def _recent(session: Session, schedule: ScheduleService, user: User) -> dict[str, Any]:
    """Recent announcements (deliveries counted by state) and schedule items of the user's wards, newest first."""
    wards = wards_of(session, user)
    announcements = [_summary(row, deliveries) for row, deliveries in recent_in_wards(session, wards, RECENT)]
    items = [item_public(row, session, schedule) for row in session.scalars(
        select(ScheduleItem).where(ScheduleItem.ward_id.in_(wards))
        .order_by(ScheduleItem.created_at.desc()).limit(RECENT))]
    return {"announcements": announcements, "items": items}


def _queue(session: Session, schedule: ScheduleService, user: User) -> list[ScheduleItemPublic]:
    """Schedule items waiting for an approver in the wards where the user approves, oldest first."""
    wards = wards_of(session, user, ("approver",))
    return [item_public(row, session, schedule) for row in session.scalars(
        select(ScheduleItem).where(ScheduleItem.status == "pending", ScheduleItem.ward_id.in_(wards))
        .order_by(ScheduleItem.created_at))]


def _labels() -> dict[str, Any]:
    return {"priority_labels": PRIORITY_LABELS, "announcement_status": ANNOUNCEMENT_STATUS,
            "delivery_status": DELIVERY_STATUS, "item_status": ITEM_STATUS, "bad_delivery": _BAD_DELIVERY,
            "repeat_text": describe_rrule, "day_labels": DAY_LABELS, "zone_prefix": ZONE_PREFIX}


def describe_rrule(rrule: str | None) -> list[str]:
    """An item's recurrence as msgids to show (the console's own choices by name, any other rule as it is)."""
    if not rrule:
        return [N_("Once")]
    parts = dict(p.partition("=")[::2] for p in rrule.split(";"))
    if set(parts) == {"FREQ"} and parts["FREQ"] == "DAILY":
        return [REPEAT_LABELS["daily"]]
    if set(parts) == {"FREQ", "BYDAY"} and parts["FREQ"] == "WEEKLY":
        days = parts["BYDAY"].split(",")
        if days == list(WEEKDAYS):
            return [REPEAT_LABELS["weekdays"]]
        if all(d in DAY_LABELS for d in days):
            return [DAY_LABELS[d] for d in days]
    return [rrule]


def _queue_response(request: Request, errors: dict[str, dict[str, list[str]]], notice: str | None,
                    queue: list[ScheduleItemPublic], status_code: int = 200) -> Response:
    return render(request, "announcements/_queue.html",
                  {"queue": queue, "queue_errors": errors, "queue_notice": notice, "queue_oob": True, **_labels()},
                  status_code=status_code, headers={"HX-Trigger": REFRESH_EVENT} if status_code == 200 else None)


def _load_queue(db: Database, schedule: ScheduleService, user: User) -> list[ScheduleItemPublic]:
    with db.session() as session:
        return _queue(session, schedule, user)


# routes -------------------------------------------------------------------------------------------------


@router.get("/announcements")
def announcements_page(request: Request, session: SessionDep, settings: SettingsDep, schedule: ScheduleDep,
                       user: ConsoleUserDep) -> Response:
    """The page: compose (officers, approvers), approval queue (approvers), recent announcements and items."""
    roles = user.role_set
    can_compose, can_approve = bool(roles & COMPOSERS), bool(roles & APPROVERS)
    context: dict[str, Any] = {"can_compose": can_compose, "can_approve": can_approve, **_labels(),
                               **_recent(session, schedule, user)}
    if can_compose:
        options = options_for(session, user, settings.text_max_chars)
        context.update(_compose_context(blank_values(settings), {}, options))
    context.update({"queue": _queue(session, schedule, user) if can_approve else [], "queue_errors": {},
                    "queue_notice": None, "queue_oob": False})
    return render(request, "announcements/page.html", context)


@router.get("/announcements/recent")
def recent_fragment(request: Request, session: SessionDep, schedule: ScheduleDep,
                    user: ConsoleUserDep) -> Response:
    """The recent announcements and schedule items (fetched again when something changes)."""
    return render(request, "announcements/_recent.html", {**_labels(), **_recent(session, schedule, user),
                                                          "can_compose": bool(user.role_set & COMPOSERS)})


def _schedule_error(exc: Exception) -> HTTPException:
    """A schedule service refusal as the API answers it (the console shows its error page)."""
    if isinstance(exc, ItemNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule item {exc}")
    if isinstance(exc, ItemForbidden | OutOfScope):
        return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


@router.post("/announcements/items/{item_id}/cancel")
async def cancel(item_id: str, request: Request, db: DatabaseDep, schedule: ScheduleDep,
                 user: ConsoleOfficerDep) -> Response:
    """Withdraws a scheduled announcement from every speaker (as the API's cancel; its history stays)."""
    def work() -> dict[str, Any]:
        with db.session() as session:
            schedule.cancel(session, item_id, user)
        with db.session() as session:
            return _recent(session, schedule, user)

    try:
        lists = await run_in_threadpool(work)
    except (ItemNotFound, ItemForbidden, OutOfScope, ItemStateError) as exc:
        raise _schedule_error(exc) from None
    return render(request, "announcements/_recent.html", {**_labels(), **lists, "can_compose": True},
                  headers={"HX-Trigger": REFRESH_EVENT})


@router.get("/announcements/queue")
def queue_fragment(request: Request, session: SessionDep, schedule: ScheduleDep,
                   user: ConsoleApproverDep) -> Response:
    """The approval queue (fetched again when an item is added or decided)."""
    return render(request, "announcements/_queue.html",
                  {"queue": _queue(session, schedule, user), "queue_errors": {}, "queue_notice": None,
                   "queue_oob": False, **_labels()})


@router.post("/announcements/preview")
async def listen(request: Request, db: DatabaseDep, speech: SpeechDep, settings: SettingsDep,
                 user: ConsoleOfficerDep) -> Response:
    """The text as the speech engine will read it, and the rendered audio to play (as the API's preview)."""
    form = await request.form()
    text = normalize_text(str(form.get("text", "")))
    ward, _ = await run_in_threadpool(ward_for_broadcast, db, user, str(form.get("ward", "")) or None)
    with speaking_to(request):
        errors: list[str] = []
        limit = settings.text_max_chars
        if not text:
            errors = [gettext("Write the text to be read out.")]
        elif len(text) > limit:
            errors = [gettext("Too long: %(length)s characters; at most %(max_length)s.")
                      % {"length": len(text), "max_length": limit}]
        result = None
        if not errors:
            try:
                result = preview_public(await render_preview(speech, text, [ward]), settings.resolved_public_url())
            except (PreviewRefused, SpeechError) as exc:
                errors = [m for messages in refusal_errors(exc, [], False).values() for m in messages]
    if result is None:
        return render(request, "announcements/_preview.html", {"preview": None, "preview_errors": errors},
                      status_code=422)
    return render(request, "announcements/_preview.html", {"preview": result, "preview_errors": [],
                                                            "audio_url": f"/media/{result.media.sha256}"})


def _create_item(db: Database, schedule: ScheduleService, body: ScheduleItemCreate, user: User,
                 city_wards: WardChoice | None = None) -> str:
    """Stores a schedule item (speech is rendered now), or the city's item for ``city_wards``; its status
    (``pending`` when it, or one ward's part, waits for an approver)."""
    with db.session() as session:
        if city_wards is None:
            return schedule.create(session, item_input(body), user).status
        parts = CityItems(schedule).create(session, item_input(body), city_wards, user).parts
        return "pending" if any(p.status == "pending" for p in parts) else "approved"


@router.post("/announcements")
async def compose(request: Request, db: DatabaseDep, settings: SettingsDep, announcements: AnnouncementsDep,
                  schedule: ScheduleDep, user: ConsoleOfficerDep) -> Response:
    """Sends now (an announcement) or schedules (a one-off or repeating schedule item, approved if the site
    requires it); on any problem the form comes back with the message under the field."""
    raw = await request.form()
    values = {**blank_values(settings), "everyone": False, "queue": False, "all_wards": False, **form_values(raw)}
    options = await run_in_threadpool(load_options, db, settings, user)
    with speaking_to(request):
        try:
            form = ComposeForm.model_validate({k: v for k, v in values.items() if k in ComposeForm.model_fields})
        except ValidationError as exc:
            return render(request, "announcements/_compose.html",
                          _compose_context(values, field_errors(exc), options), status_code=422)
        checked, errors = check_form(form, settings)
        if errors:
            return render(request, "announcements/_compose.html", _compose_context(values, errors, options),
                          status_code=422)
        assert checked.targets is not None
        city_wards = form.wards_chosen()
        try:
            if form.when == "now":
                body = AnnouncementCreate(text=checked.text, targets=checked.targets, priority=form.priority)
                check_target_names(user, body.target_names())
                if city_wards is not None:
                    sent = await CityAnnouncements(announcements).submit(
                        body.text, body.target_names(), body.priority, None, user, None, city_wards)
                    held = any(p.status == "pending" for p in sent.parts)
                else:
                    ward, hide = await run_in_threadpool(ward_for_broadcast, db, user, form.ward or None)
                    await announcements.submit(body.text, body.target_names(), body.priority, body.start_at,
                                               user.id, body.recording, ward=ward, hide_unknown=hide)
                    held = False
                notice = gettext("Sent. Some wards approve it before it plays there; the list below shows each "
                                 "speaker's progress.") if held else \
                    gettext("Sent. The list below shows each speaker's progress.")
            else:
                assert checked.start is not None
                item = ScheduleItemCreate(
                    title=item_title(checked.text), priority=form.priority,
                    content=[{"kind": "tts", "text": checked.text}],  # type: ignore[list-item]
                    targets=checked.targets, start=checked.start, rrule=checked.rrule, until=checked.until,
                    queue=form.queue)
                item_status = await run_in_threadpool(_create_item, db, schedule, item, user, city_wards)
                notice = gettext("Scheduled. It waits for an approver before it plays.") \
                    if item_status == "pending" else gettext("Scheduled.")
        except ValidationError as exc:
            return render(request, "announcements/_compose.html",
                          _compose_context(values, field_errors(exc), options), status_code=422)
        except (OutOfScope, InvalidAnnouncement, ItemInvalid, ItemConflicts, ItemForbidden,
                CityInputInvalid) as exc:
            errors = refusal_errors(exc, options.scope, form.when == "recurring")
            return render(request, "announcements/_compose.html", _compose_context(values, errors, options),
                          status_code=422)
    return render(request, "announcements/_compose.html",
                  _compose_context(blank_values(settings), {}, options, notice),
                  headers={"HX-Trigger": REFRESH_EVENT})


async def _decide(request: Request, db: Database, schedule: ScheduleService, user: User, item_id: str,
                  reason: str | None) -> Response:
    def work(body: RejectRequest | None) -> None:
        with db.session() as session:
            schedule.decide(session, item_id, user, body is None, body.reason if body is not None else "")

    with speaking_to(request):
        errors: dict[str, dict[str, list[str]]] = {}
        notice: str | None = None
        try:
            if reason is None:
                await run_in_threadpool(work, None)
                notice = gettext("Approved. It will play as scheduled.")
            else:
                await run_in_threadpool(work, RejectRequest(reason=reason))
                notice = gettext("Rejected. The author sees your reason.")
        except ValidationError as exc:
            errors[item_id] = field_errors(exc)
        except ItemNotFound as exc:
            raise _schedule_error(exc) from None
        except (ItemForbidden, OutOfScope):
            errors[item_id] = {"__all__": [gettext("Someone other than its author must approve or reject it.")]}
        except ItemStateError:
            errors[item_id] = {"__all__": [gettext("This item is no longer waiting for approval.")]}
    queue = await run_in_threadpool(_load_queue, db, schedule, user)
    return _queue_response(request, errors, notice, queue, 422 if errors else 200)


@router.post("/announcements/items/{item_id}/approve")
async def approve(item_id: str, request: Request, db: DatabaseDep, schedule: ScheduleDep,
                  user: ConsoleApproverDep) -> Response:
    """An approver lets a pending item go out (never their own: the service refuses that)."""
    return await _decide(request, db, schedule, user, item_id, None)


@router.post("/announcements/items/{item_id}/reject")
async def reject(item_id: str, request: Request, db: DatabaseDep, schedule: ScheduleDep,
                 user: ConsoleApproverDep) -> Response:
    """An approver sends a pending item back with a reason (required)."""
    form = await request.form()
    return await _decide(request, db, schedule, user, item_id, str(form.get("reason", "")).strip())
