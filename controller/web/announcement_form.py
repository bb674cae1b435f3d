"""The announcements page's compose form: its fields, the checks a person is told about in their own
words, and the services' refusals put under the field they are about (controller/web/pages/announcements.py
renders it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from audio.engines import AllEnginesFailed
from controller.accounts.reach import unit_tree, wards_of
from controller.accounts.scope import OutOfScope
from controller.api.schemas import TargetsIn
from controller.broadcasts.announcements import InvalidAnnouncement, normalize_text
from controller.broadcasts.from_above import CityInputInvalid, WardChoice, city_reach
from controller.broadcasts.speech_preview import PreviewRefused
from controller.broadcasts.wards import COMPOSER_ROLES
from controller.schedule.items import ItemConflicts, ItemForbidden, ItemInvalid
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import Device, User, Zone
from controller.web.forms import translate_error
from controller.web.i18n import N_, gettext
from devices.protocol import Priority

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
_LIST_FIELDS = ("zones", "agents", "days", "city_wards")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
#: Where an API error about a body field is shown on the form.
_API_FIELD_TO_FORM = {"text": "text", "recording": "text", "content": "text", "targets": "targets",
                      "start_at": "at", "until": "until_date", "rrule": "repeat", "title": "text",
                      "wards": "city_wards"}


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
    #: The ward it goes to: asked of staff of several wards only.
    ward: str = Field(default="", max_length=63)
    #: City staff: the wards it goes to, each getting it as from above (instead of ``ward``), or all of them.
    city_wards: list[str] = Field(default_factory=list, max_length=1000)
    all_wards: bool = False

    def wards_chosen(self) -> WardChoice | None:
        """The city's choice of wards, or None for an announcement of one ward."""
        return "all" if self.all_wards else (list(self.city_wards) or None)


def form_values(form: FormData) -> dict[str, Any]:
    """The submitted values, lists for the multi-choice fields (what the form shows again on an error)."""
    values: dict[str, Any] = {}
    for key in form:
        if key in _LIST_FIELDS:
            values[key] = [str(v) for v in form.getlist(key)]
        else:
            values[key] = str(form.get(key, ""))
    return values


def blank_values(settings: Settings) -> dict[str, Any]:
    today = datetime.now(settings.tz).date()
    return {"text": "", "everyone": False, "zones": [], "agents": [], "when": "now", "at": "", "repeat": "daily",
            "days": [], "time": "", "from_date": today.isoformat(), "until_date": "", "priority": "normal",
            "queue": False, "ward": "", "city_wards": [], "all_wards": False}


@dataclass
class Options:
    """What the compose form offers this user: zones, speakers and whether "everyone" is theirs to reach."""

    zones: list[tuple[str, str]] = field(default_factory=list)
    agents: list[tuple[str, str, list[str]]] = field(default_factory=list)
    everyone: bool = True
    scope: list[str] = field(default_factory=list)
    #: The site's limit on an announcement's text (characters).
    text_max: int = 5000
    #: The wards the user composes for, (id, name); the form asks which one only when there are several.
    wards: list[tuple[str, str]] = field(default_factory=list)
    #: City staff: the wards they may send to at once, (id, name); empty for a ward's staff.
    city_wards: list[tuple[str, str]] = field(default_factory=list)


def options_for(session: Session, user: User, text_max: int) -> Options:
    """Zones and speakers of the wards ``user`` composes for; a zone-limited user sees only their zones (the
    API refuses anything else)."""
    wards = sorted(wards_of(session, user, COMPOSER_ROLES))
    tree = unit_tree(session)
    ward_names = [(w, tree.name.get(w, w)) for w in wards]
    names = {z.id: z.name for z in session.scalars(select(Zone).where(Zone.ward_id.in_(wards)))}
    zones = sorted(set(names) | {z for zs in session.scalars(select(Device.zones).where(Device.ward_id.in_(wards)))
                                 for z in zs})
    scope = sorted(user.zones or ()) if "admin" not in user.role_set else []
    city = [(w, tree.name.get(w, w)) for w in city_reach(session, user, COMPOSER_ROLES)]
    if scope:
        return Options([(z, names.get(z, "")) for z in zones if z in scope], [], False, scope, text_max,
                       ward_names, city)
    agents = [(d.id, d.name, list(d.zones)) for d in session.scalars(
        select(Device).where(Device.enabled.is_(True), Device.ward_id.in_(wards)).order_by(Device.id))]
    return Options([(z, names.get(z, "")) for z in zones], agents, True, [], text_max, ward_names, city)


def load_options(db: Database, settings: Settings, user: User) -> Options:
    with db.session() as session:
        return options_for(session, user, settings.text_max_chars)


def item_title(text: str) -> str:
    """A schedule item's title: the text on one line, cut near 200 characters."""
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199].rsplit(" ", 1)[0] + "…"


def _rrule(form: ComposeForm) -> str:
    if form.repeat == "daily":
        return "FREQ=DAILY"
    days = WEEKDAYS if form.repeat == "weekdays" else [d for d in DAY_LABELS if d in form.days]
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


def check_form(form: ComposeForm, settings: Settings) -> tuple[Checked, dict[str, list[str]]]:
    """The checks a person gets told about in their own words (the services repeat them, in English)."""
    errors: dict[str, list[str]] = {}
    tz = settings.tz
    now_local = datetime.now(tz).replace(tzinfo=None, second=0, microsecond=0)
    text = normalize_text(form.text)
    checked = Checked(form, text)
    limit = settings.text_max_chars
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


def _field_error(field: str, message: str, recurring: bool) -> dict[str, list[str]]:
    """A service's refusal about one input field (``content.0.text``…), under the form field it is about."""
    loc = field.split(".")
    name = _API_FIELD_TO_FORM.get(loc[0], "__all__")
    if loc[0] == "start":
        name = "from_date" if recurring else "at"
    return {name: [translate_error({"loc": loc, "msg": message, "type": "value_error"})]}


def refusal_errors(exc: Exception, scope: list[str], recurring: bool) -> dict[str, list[str]]:
    """A service's refusal, in the user's language, under the field it is about."""
    if isinstance(exc, OutOfScope | ItemForbidden):
        message = gettext("You may only send to your own areas: %(zones)s.") % {"zones": ", ".join(scope)} \
            if scope else gettext("Your account may not send to these listeners.")
        return {"targets": [message]}
    if isinstance(exc, ItemConflicts):
        return {"__all__": [gettext("This overlaps %(count)s other broadcast(s) of the same priority on the same "
                                    "speakers. Choose another time, or tick “Play after them”.")
                            % {"count": len(exc.conflicts)}]}
    if isinstance(exc, InvalidAnnouncement | ItemInvalid | CityInputInvalid):
        return _field_error(exc.field, str(exc), recurring)
    if isinstance(exc, PreviewRefused):
        return _field_error("text", str(exc), recurring)
    if isinstance(exc, AllEnginesFailed):
        return {"__all__": [gettext("No speech engine could read the text. Try again later, or tell your "
                                    "administrator.")]}
    return {"__all__": [gettext("The announcement could not be saved. Try again; if it happens again, tell your "
                                "administrator.")]}
