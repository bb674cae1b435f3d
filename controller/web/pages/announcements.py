"""``/console/announcements``: compose (listen first), send now or schedule, follow delivery, approve.

Every change goes through the API's own route functions (controller/api/announcements.py, schedule.py,
speech.py), so validation, zone scope, approval rules and the audit log are the same as for scripts. The
console adds what a person needs on top: messages in their language next to the field, and the common
recurrences as plain choices instead of an RRULE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from controller.announcements import ZONE_PREFIX, normalise_text, split_targets
from controller.api.announcements import create_announcement, list_announcements
from controller.api.deps import ControllerDep, SessionDep
from controller.api.schedule import approve_item, cancel_item, create_item, item_public, reject_item
from controller.api.schemas import (
    AnnouncementCreate,
    RejectRequest,
    ScheduleItemCreate,
    ScheduleItemPublic,
    SpeechPreviewRequest,
    TargetsIn,
)
from controller.api.speech import preview
from controller.models import Announcement, Device, ScheduleItem, User, Zone
from controller.runtime import Controller
from controller.schedule_items import known_zones
from controller.web.forms import field_errors, translate_error
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.session import ConsoleApproverDep, ConsoleOfficerDep, ConsoleUserDep
from controller.web.templating import PRIORITY_LABELS, render
from devices.protocol import Priority

router = APIRouter(prefix="/console", include_in_schema=False)

#: How many recent announcements and schedule items the list shows.
RECENT = 20
#: The htmx event (``HX-Trigger``) that makes the page fetch its lists again after the user's own change.
REFRESH_EVENT = "lp-announcements"
#: Roles that may compose (the API's OfficerDep) and approve (ApproverDep).
COMPOSERS = frozenset({"officer", "approver", "admin"})
APPROVERS = frozenset({"approver", "admin"})

WHEN_LABELS: dict[str, str] = {
    "now": N_("Now"),
    "at": N_("At a set time"),
    "recurring": N_("Repeating"),
}
REPEAT_LABELS: dict[str, str] = {
    "daily": N_("Every day"),
    "weekdays": N_("Monday to Friday"),
    "weekly": N_("Every week, on the days chosen"),
}
#: RFC 5545 day codes, Monday first, with their short names.
DAY_LABELS: dict[str, str] = {
    "MO": N_("Mon"), "TU": N_("Tue"), "WE": N_("Wed"), "TH": N_("Thu"), "FR": N_("Fri"), "SA": N_("Sat"),
    "SU": N_("Sun"),
}
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

_LIST_FIELDS = ("zones", "agents", "days")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
#: Where an API error about a body field is shown on the form.
_API_FIELD_TO_FORM = {"text": "text", "recording": "text", "content": "text", "targets": "targets",
                      "start_at": "at", "until": "until_date", "rrule": "repeat", "title": "text"}


class ComposeForm(BaseModel):
    """The compose form's fields as the browser sends them (checked again by the API's own models)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=100_000)
    everyone: bool = False
    zones: list[str] = Field(default_factory=list, max_length=200)
    agents: list[str] = Field(default_factory=list, max_length=1000)
    when: Literal["now", "at", "recurring"] = "now"
    at: str = Field(default="", max_length=32)
    repeat: Literal["daily", "weekdays", "weekly"] = "daily"
    days: list[Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]] = Field(default_factory=list, max_length=7)
    time: str = Field(default="", max_length=16)
    from_date: str = Field(default="", max_length=16)
    until_date: str = Field(default="", max_length=16)
    priority: Priority = Priority.NORMAL
    queue: bool = False


def _form_values(form: FormData) -> dict[str, Any]:
    """The submitted values, lists for the multi-choice fields (what the form shows again on an error)."""
    values: dict[str, Any] = {}
    for key in form:
        if key in _LIST_FIELDS:
            values[key] = [str(v) for v in form.getlist(key)]
        else:
            values[key] = str(form.get(key, ""))
    return values


def _blank_values(controller: Controller) -> dict[str, Any]:
    today = datetime.now(controller.settings.tz).date()
    return {"text": "", "everyone": False, "zones": [], "agents": [], "when": "now", "at": "", "repeat": "daily",
            "days": [], "time": "", "from_date": today.isoformat(), "until_date": "", "priority": "normal",
            "queue": False}


@dataclass
class Options:
    """What the compose form offers this user: zones, speakers and whether "everyone" is theirs to reach."""

    zones: list[tuple[str, str]] = field(default_factory=list)
    agents: list[tuple[str, str, list[str]]] = field(default_factory=list)
    everyone: bool = True
    scope: list[str] = field(default_factory=list)
    #: The site's limit on an announcement's text (characters).
    text_max: int = 5000


def _options(session: Session, user: User, text_max: int) -> Options:
    """Zones and speakers ``user`` may aim at; a zone-limited user sees only their zones (the API refuses
    anything else)."""
    names = {z.id: z.name for z in session.scalars(select(Zone))}
    zones = sorted(known_zones(session))
    scope = sorted(user.zones or ()) if "admin" not in user.role_set else []
    if scope:
        return Options([(z, names.get(z, "")) for z in zones if z in scope], [], False, scope, text_max)
    agents = [(d.id, d.name, list(d.zones)) for d in session.scalars(
        select(Device).where(Device.enabled.is_(True)).order_by(Device.id))]
    return Options([(z, names.get(z, "")) for z in zones], agents, True, [], text_max)


def _load_options(controller: Controller, user: User) -> Options:
    with controller.db.session() as session:
        return _options(session, user, controller.settings.text_max_chars)


def _title(text: str) -> str:
    """A schedule item's title: the text on one line, cut near 200 characters."""
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199].rsplit(" ", 1)[0] + "…"


def _rrule(form: ComposeForm) -> str:
    if form.repeat == "daily":
        return "FREQ=DAILY"
    days = _WEEKDAYS if form.repeat == "weekdays" else [d for d in DAY_LABELS if d in form.days]
    return "FREQ=WEEKLY;BYDAY=" + ",".join(days)


@dataclass
class Checked:
    """A compose form that passed the console's checks: what to hand to the API."""

    form: ComposeForm
    text: str
    targets: TargetsIn | None = None
    start: datetime | None = None
    until: datetime | None = None
    rrule: str | None = None


def _check(form: ComposeForm, controller: Controller) -> tuple[Checked, dict[str, list[str]]]:
    """The checks a person gets told about in their own words (the API repeats them, in English)."""
    errors: dict[str, list[str]] = {}
    tz = controller.settings.tz
    now_local = datetime.now(tz).replace(tzinfo=None, second=0, microsecond=0)
    text = normalise_text(form.text)
    checked = Checked(form, text)
    limit = controller.settings.text_max_chars
    if not text:
        errors["text"] = [gettext("Write the text to be read out.")]
    elif len(text) > limit:
        errors["text"] = [gettext("Too long: %(length)s characters; at most %(max_length)s.")
                          % {"length": len(text), "max_length": limit}]
    try:
        if form.everyone:
            checked.targets = TargetsIn(all=True)
        elif form.zones or form.agents:
            checked.targets = TargetsIn(zones=form.zones, agents=form.agents)
        else:
            errors["targets"] = [gettext("Choose who will hear it: everyone, or some areas or speakers.")]
    except ValidationError:
        errors["targets"] = [gettext("Choose areas and speakers from the list.")]
    if form.when == "at":
        try:
            checked.start = datetime.fromisoformat(form.at).replace(tzinfo=None, second=0, microsecond=0)
        except ValueError:
            errors["at"] = [gettext("Enter a valid date and time.")]
        else:
            if checked.start < now_local:
                errors["at"] = [gettext("This time has already passed. Choose a later time.")]
    elif form.when == "recurring":
        at_time: time | None = None
        first: date | None = None
        try:
            at_time = time.fromisoformat(form.time)
        except ValueError:
            errors["time"] = [gettext("Enter a valid time.")]
        try:
            first = date.fromisoformat(form.from_date) if form.from_date else now_local.date()
        except ValueError:
            errors["from_date"] = [gettext("Enter a valid date.")]
        if form.until_date:
            try:
                last = date.fromisoformat(form.until_date)
            except ValueError:
                errors["until_date"] = [gettext("Enter a valid date.")]
            else:
                if last < now_local.date():
                    errors["until_date"] = [gettext("This date has already passed.")]
                elif first is not None and last < first:
                    errors["until_date"] = [gettext("The last day is before the first day.")]
                else:
                    checked.until = datetime.combine(last, time(23, 59, 59))
        if form.repeat == "weekly" and not form.days:
            errors["days"] = [gettext("Choose at least one day of the week.")]
        if at_time is not None and first is not None:
            checked.start = datetime.combine(first, at_time.replace(second=0, microsecond=0))
            if checked.until is not None and checked.until < checked.start:
                errors["until_date"] = [gettext("The last day is before the first day.")]
        checked.rrule = _rrule(form)
    return checked, errors


def _api_errors(exc: HTTPException, scope: list[str], recurring: bool) -> dict[str, list[str]]:
    """An error from the API's route functions, in the user's language, under the field it is about."""
    if exc.status_code == 403:
        message = gettext("You may only send to your own areas: %(zones)s.") % {"zones": ", ".join(scope)} \
            if scope else gettext("Your account may not send to these listeners.")
        return {"targets": [message]}
    if exc.status_code == 409:
        detail: dict[str, Any] = exc.detail if isinstance(exc.detail, dict) else {}
        count = len(detail.get("conflicts", []))
        return {"__all__": [gettext("This overlaps %(count)s other broadcast(s) of the same priority on the same "
                                    "speakers. Choose another time, or tick “Play after them”.") % {"count": count}]}
    if exc.status_code == 422 and isinstance(exc.detail, list):
        found: dict[str, list[str]] = {}
        for error in exc.detail:
            loc = [str(p) for p in error.get("loc", ()) if p != "body"]
            name = _API_FIELD_TO_FORM.get(loc[0] if loc else "", "__all__")
            if loc and loc[0] == "start":
                name = "from_date" if recurring else "at"
            found.setdefault(name, []).append(translate_error(error))
        return found
    if exc.status_code == 503:
        return {"__all__": [gettext("No speech engine could read the text. Try again later, or tell your "
                                    "administrator.")]}
    return {"__all__": [gettext("The announcement could not be saved. Try again; if it happens again, tell your "
                                "administrator.")]}


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


def _recent(session: Session, controller: Controller, user: User) -> dict[str, Any]:
    """Recent announcements (deliveries counted by state) and schedule items, newest first."""
    summaries = list_announcements(session, user, limit=RECENT, offset=0)
    announcements = []
    for summary in summaries:
        row = session.get(Announcement, summary.id)
        if row is not None:
            announcements.append(_summary(row, summary.deliveries))
    items = [item_public(row, session, controller) for row in session.scalars(
        select(ScheduleItem).order_by(ScheduleItem.created_at.desc()).limit(RECENT))]
    return {"announcements": announcements, "items": items}


def _queue(session: Session, controller: Controller) -> list[ScheduleItemPublic]:
    """Schedule items waiting for an approver, oldest first."""
    return [item_public(row, session, controller) for row in session.scalars(
        select(ScheduleItem).where(ScheduleItem.status == "pending").order_by(ScheduleItem.created_at))]


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
        if days == list(_WEEKDAYS):
            return [REPEAT_LABELS["weekdays"]]
        if all(d in DAY_LABELS for d in days):
            return [DAY_LABELS[d] for d in days]
    return [rrule]


def _queue_response(request: Request, controller: Controller, errors: dict[str, dict[str, list[str]]],
                    notice: str | None, queue: list[ScheduleItemPublic], status_code: int = 200) -> Response:
    return render(request, "announcements/_queue.html",
                  {"queue": queue, "queue_errors": errors, "queue_notice": notice, "queue_oob": True, **_labels()},
                  status_code=status_code, headers={"HX-Trigger": REFRESH_EVENT} if status_code == 200 else None)


def _load_queue(controller: Controller) -> list[ScheduleItemPublic]:
    with controller.db.session() as session:
        return _queue(session, controller)


# routes -------------------------------------------------------------------------------------------------


@router.get("/announcements")
def announcements_page(request: Request, session: SessionDep, controller: ControllerDep,
                       user: ConsoleUserDep) -> Response:
    """The page: compose (officers, approvers), approval queue (approvers), recent announcements and items."""
    roles = user.role_set
    can_compose, can_approve = bool(roles & COMPOSERS), bool(roles & APPROVERS)
    context: dict[str, Any] = {"can_compose": can_compose, "can_approve": can_approve, **_labels(),
                               **_recent(session, controller, user)}
    if can_compose:
        options = _options(session, user, controller.settings.text_max_chars)
        context.update(_compose_context(_blank_values(controller), {}, options))
    context.update({"queue": _queue(session, controller) if can_approve else [], "queue_errors": {},
                    "queue_notice": None, "queue_oob": False})
    return render(request, "announcements/page.html", context)


@router.get("/announcements/recent")
def recent_fragment(request: Request, session: SessionDep, controller: ControllerDep,
                    user: ConsoleUserDep) -> Response:
    """The recent announcements and schedule items (fetched again when something changes)."""
    return render(request, "announcements/_recent.html", {**_labels(), **_recent(session, controller, user),
                                                          "can_compose": bool(user.role_set & COMPOSERS)})


@router.post("/announcements/items/{item_id}/cancel")
async def cancel(item_id: str, request: Request, controller: ControllerDep, user: ConsoleOfficerDep) -> Response:
    """Withdraws a scheduled announcement from every speaker (the API's cancel; its history stays)."""
    await cancel_item(item_id, controller, user)

    def lists() -> dict[str, Any]:
        with controller.db.session() as session:
            return _recent(session, controller, user)

    return render(request, "announcements/_recent.html",
                  {**_labels(), **await run_in_threadpool(lists), "can_compose": True},
                  headers={"HX-Trigger": REFRESH_EVENT})


@router.get("/announcements/queue")
def queue_fragment(request: Request, session: SessionDep, controller: ControllerDep,
                   _user: ConsoleApproverDep) -> Response:
    """The approval queue (fetched again when an item is added or decided)."""
    return render(request, "announcements/_queue.html",
                  {"queue": _queue(session, controller), "queue_errors": {}, "queue_notice": None, "queue_oob": False,
                   **_labels()})


@router.post("/announcements/preview")
async def listen(request: Request, controller: ControllerDep, user: ConsoleOfficerDep) -> Response:
    """The text as the speech engine will read it, and the rendered audio to play (the API's preview)."""
    form = await request.form()
    text = normalise_text(str(form.get("text", "")))
    with speaking_to(request):
        errors: list[str] = []
        limit = controller.settings.text_max_chars
        if not text:
            errors = [gettext("Write the text to be read out.")]
        elif len(text) > limit:
            errors = [gettext("Too long: %(length)s characters; at most %(max_length)s.")
                      % {"length": len(text), "max_length": limit}]
        result = None
        if not errors:
            try:
                result = await preview(SpeechPreviewRequest(text=text), controller, user)
            except HTTPException as exc:
                errors = [m for messages in _api_errors(exc, [], False).values() for m in messages]
    if result is None:
        return render(request, "announcements/_preview.html", {"preview": None, "preview_errors": errors},
                      status_code=422)
    return render(request, "announcements/_preview.html", {"preview": result, "preview_errors": [],
                                                            "audio_url": f"/media/{result.media.sha256}"})


@router.post("/announcements")
async def compose(request: Request, controller: ControllerDep, user: ConsoleOfficerDep) -> Response:
    """Sends now (an announcement) or schedules (a one-off or repeating schedule item, approved if the site
    requires it); on any problem the form comes back with the message under the field."""
    raw = await request.form()
    values = {**_blank_values(controller), "everyone": False, "queue": False, **_form_values(raw)}
    options = await run_in_threadpool(_load_options, controller, user)
    with speaking_to(request):
        try:
            form = ComposeForm.model_validate({k: v for k, v in values.items() if k in ComposeForm.model_fields})
        except ValidationError as exc:
            return render(request, "announcements/_compose.html",
                          _compose_context(values, field_errors(exc), options), status_code=422)
        checked, errors = _check(form, controller)
        if errors:
            return render(request, "announcements/_compose.html", _compose_context(values, errors, options),
                          status_code=422)
        assert checked.targets is not None
        try:
            if form.when == "now":
                await create_announcement(AnnouncementCreate(text=checked.text, targets=checked.targets,
                                                             priority=form.priority), controller, user)
                notice = gettext("Sent. The list below shows each speaker's progress.")
            else:
                assert checked.start is not None
                item = await create_item(ScheduleItemCreate(
                    title=_title(checked.text), priority=form.priority,
                    content=[{"kind": "tts", "text": checked.text}],  # type: ignore[list-item]
                    targets=checked.targets, start=checked.start, rrule=checked.rrule, until=checked.until,
                    queue=form.queue), controller, user)
                notice = gettext("Scheduled. It waits for an approver before it plays.") \
                    if item.status == "pending" else gettext("Scheduled.")
        except ValidationError as exc:
            return render(request, "announcements/_compose.html",
                          _compose_context(values, field_errors(exc), options), status_code=422)
        except HTTPException as exc:
            errors = _api_errors(exc, options.scope, form.when == "recurring")
            return render(request, "announcements/_compose.html", _compose_context(values, errors, options),
                          status_code=422)
    return render(request, "announcements/_compose.html",
                  _compose_context(_blank_values(controller), {}, options, notice),
                  headers={"HX-Trigger": REFRESH_EVENT})


async def _decide(request: Request, controller: Controller, user: User, item_id: str,
                  reason: str | None) -> Response:
    with speaking_to(request):
        errors: dict[str, dict[str, list[str]]] = {}
        notice: str | None = None
        try:
            if reason is None:
                await approve_item(item_id, controller, user)
                notice = gettext("Approved. It will play as scheduled.")
            else:
                await reject_item(item_id, RejectRequest(reason=reason), controller, user)
                notice = gettext("Rejected. The author sees your reason.")
        except ValidationError as exc:
            errors[item_id] = field_errors(exc)
        except HTTPException as exc:
            if exc.status_code == 403:
                message = gettext("Someone other than its author must approve or reject it.")
            elif exc.status_code == 409:
                message = gettext("This item is no longer waiting for approval.")
            elif exc.status_code == 404:
                raise
            else:
                message = gettext("The decision could not be saved. Try again.")
            errors[item_id] = {"__all__": [message]}
    queue = await run_in_threadpool(_load_queue, controller)
    return _queue_response(request, controller, errors, notice, queue, 422 if errors else 200)


@router.post("/announcements/items/{item_id}/approve")
async def approve(item_id: str, request: Request, controller: ControllerDep, user: ConsoleApproverDep) -> Response:
    """An approver lets a pending item go out (never their own: the service refuses that)."""
    return await _decide(request, controller, user, item_id, None)


@router.post("/announcements/items/{item_id}/reject")
async def reject(item_id: str, request: Request, controller: ControllerDep, user: ConsoleApproverDep) -> Response:
    """An approver sends a pending item back with a reason (required)."""
    form = await request.form()
    return await _decide(request, controller, user, item_id, str(form.get("reason", "")).strip())
