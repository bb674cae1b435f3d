"""The LED signs page: compose sign content, see it exactly as each board will show it, put it on signs,
approve sign items, and watch what every sign shows now.

Previews are the API's own ``preview.png`` (drawn by the renderer the agents use), so what the officer
sees is the board's image dot for dot. Content and items are saved through the audited sign actions the
API's ``/api/v1/sign-*`` routes call too (controller/signs/actions.py), so validation, approval and the
audit trail are the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import unit_tree, wards_of
from controller.api.deps import SessionDep, SettingsDep, SignActionsDep, SignsDep
from controller.signs import (
    APPROVER_ROLES,
    MAX_IMAGE_BYTES,
    SignContentInput,
    SignForbidden,
    SignInputError,
    SignItemInput,
    SignNotFound,
)
from controller.signs.actions import ImageTooLarge
from controller.storage.models import Device, SignContent, SignItem, User, Zone
from controller.web.errors import error_page
from controller.web.forms import field_errors, translate_error
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.session import ConsoleApproverDep, ConsoleOfficerDep, ConsoleUserDep
from controller.web.sign_previews import DEFAULT_SIZE, panel_of, preview_sizes, previews, ward_signs
from controller.web.templating import PRIORITY_LABELS, render
from devices.led.content import Align, ImagePage, SignColour, SignMode, SignPage, TextPage
from devices.led.render import LayoutError

router = APIRouter(prefix="/console", include_in_schema=False)

#: Effects, colours and alignments as staff read them (msgids), in the order offered.
MODE_LABELS: dict[str, str] = {SignMode.STATIC: N_("Still"), SignMode.SCROLL_LEFT: N_("Scroll to the left"),
                               SignMode.SCROLL_UP: N_("Scroll up"), SignMode.FLASH: N_("Flash")}
COLOUR_LABELS: dict[str, str] = {SignColour.AMBER: N_("Amber"), SignColour.RED: N_("Red"),
                                 SignColour.GREEN: N_("Green"), SignColour.YELLOW: N_("Yellow"),
                                 SignColour.WHITE: N_("White"), SignColour.BLUE: N_("Blue")}
ALIGN_LABELS: dict[str, str] = {Align.CENTER: N_("Centre"), Align.LEFT: N_("Left"), Align.RIGHT: N_("Right")}
STATUS_LABELS: dict[str, str] = {"active": N_("Showing as scheduled"), "pending": N_("Awaiting approval"),
                                 "rejected": N_("Rejected"), "cancelled": N_("Cancelled")}
REPEAT_LABELS: dict[str, str] = {"": N_("Once"), "FREQ=DAILY": N_("Every day"), "FREQ=WEEKLY": N_("Every week")}
AGENT_LABELS: dict[str, str] = {"online": N_("online"), "offline": N_("offline"), "stopped": N_("stopped"),
                                "unknown": N_("never connected")}
SOURCE_LABELS: dict[str, str] = {"playlist": N_("Schedule"), "announcement": N_("Announcement playing"),
                                 "idle": N_("Dark")}
_SIZE_MESSAGE = N_("Write the size as width x height, for example 96x16.")
_NOTHING_MESSAGE = N_("Type some text or choose a picture.")
_IMAGE_MESSAGE = N_("The picture must be a PNG or JPEG file of at most %(kb)s KB.")
_FOUR_EYES = N_("A sign item must be approved by someone other than the person who wrote it.")
_NO_TARGET = N_("Choose all signs, or at least one zone or sign.")
_NOT_PENDING = N_("This item is no longer awaiting approval.")


def _can_compose(user: User) -> bool:
    return bool(user.role_set & {"admin", "officer", "approver"})


def _can_decide(user: User) -> bool:
    return bool(user.role_set & APPROVER_ROLES)


def _local(text: str | None) -> str:
    """Stored local wall time (ISO) as staff write it."""
    if not text:
        return "—"
    return datetime.fromisoformat(text).strftime("%d/%m/%Y %H:%M")


def _compose_defaults() -> dict[str, Any]:
    return {"title": "", "lines": "", "mode": SignMode.STATIC.value, "colour": SignColour.AMBER.value,
            "align": Align.CENTER.value, "dwell_s": "8", "size": DEFAULT_SIZE, "ward": ""}


def _assign_defaults() -> dict[str, Any]:
    return {"content_id": "", "title": "", "target_all": True, "zones": [], "signs": [], "priority": "normal",
            "start": "", "duration_min": "60", "repeat": ""}


def _labels() -> dict[str, Any]:
    return {"mode_labels": MODE_LABELS, "colour_labels": COLOUR_LABELS, "align_labels": ALIGN_LABELS,
            "priority_labels": PRIORITY_LABELS, "status_labels": STATUS_LABELS, "repeat_labels": REPEAT_LABELS,
            "agent_labels": AGENT_LABELS, "source_labels": SOURCE_LABELS}


def _items(session: Session, wards: frozenset[str]) -> list[dict[str, Any]]:
    contents = {c.id: c.title for c in session.scalars(select(SignContent).where(SignContent.ward_id.in_(wards)))}
    rows = session.scalars(select(SignItem).where(SignItem.status.in_(("active", "pending")),
                                                  SignItem.ward_id.in_(wards))
                           .order_by(SignItem.created_at.desc()).limit(200))
    return [{"row": r, "content_title": contents.get(r.content_id, ""), "start": _local(r.start_local),
             "until": _local(r.until_local) if r.until_local else None,
             "minutes": max(1, round(r.duration_ms / 60_000))} for r in rows]


def _ward_choices(session: Session, user: User) -> list[tuple[str, str]]:
    """The wards the user composes in, (id, name), offered only when there are several to choose from."""
    wards = wards_of(session, user, ("officer", "approver"))
    names = unit_tree(session).name
    return [(w, names.get(w, w)) for w in sorted(wards)] if len(wards) > 1 else []


def _assign_context(session: Session, user: User, values: dict[str, Any], errors: dict[str, list[str]],
                    notice: str | None = None) -> dict[str, Any]:
    wards = wards_of(session, user)
    zones = set(session.scalars(select(Zone.id).where(Zone.ward_id.in_(wards))))
    for device_zones in session.scalars(select(Device.zones).where(Device.ward_id.in_(wards))):
        zones.update(device_zones)
    return {"contents": list(session.scalars(select(SignContent).where(SignContent.ward_id.in_(wards))
                                             .order_by(SignContent.created_at.desc()).limit(100))),
            "signs": ward_signs(session, wards), "ward_choices": _ward_choices(session, user),
            "zones": sorted(zones), "values": values, "errors": errors, "notice": notice,
            **_labels()}


@router.get("/signs")
def signs_page(request: Request, session: SessionDep, signs: SignsDep, user: ConsoleUserDep) -> Response:
    """The signs page (the user's wards): what each sign shows now, composing, putting content on signs, the
    sign items."""
    wards = wards_of(session, user)
    context = {
        "now_rows": signs.now(session, wards), "items": _items(session, wards), "sizes": preview_sizes(session, wards),
        "can_compose": _can_compose(user), "can_decide": _can_decide(user), "compose": _compose_defaults(),
        "previews": [], "warnings": [], "saved": None, **_assign_context(session, user, _assign_defaults(), {}),
    }
    context["compose_errors"] = {}
    return render(request, "signs/page.html", context)


@router.get("/signs/now")
def signs_now(request: Request, session: SessionDep, signs: SignsDep, user: ConsoleUserDep) -> Response:
    """What each sign of the user's wards shows now (fetched again when agents report)."""
    return render(request, "signs/_now.html", {"now_rows": signs.now(session, wards_of(session, user)),
                                                **_labels()})


@router.get("/signs/items")
def signs_items(request: Request, session: SessionDep, user: ConsoleUserDep) -> Response:
    """The sign items of the user's wards (pending and active)."""
    return render(request, "signs/_items.html", {"items": _items(session, wards_of(session, user)),
                                                 "can_compose": _can_compose(user),
                                                 "can_decide": _can_decide(user), **_labels()})


@router.get("/signs/previews")
def signs_previews(request: Request, session: SessionDep, signs: SignsDep, user: ConsoleUserDep,
                   content_id: str = "", size: str = DEFAULT_SIZE) -> Response:
    """Previews of stored content of the user's wards (chosen in the "put on signs" form)."""
    row = session.get(SignContent, content_id) if content_id else None
    if row is not None and row.ward_id not in wards_of(session, user):
        row = None  # another ward's content is as unknown as none at all
    found = previews(session, signs, row, size[:20]) if row is not None else []
    return render(request, "signs/_previews.html", {"previews": found, "saved": row, "warnings": []})


# composing -----------------------------------------------------------------------------------------------


class ComposeForm(BaseModel):
    """The compose form's own fields (the page's text goes through the API's models)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=200)
    lines: str = Field(default="", max_length=10_000)
    mode: SignMode
    colour: SignColour
    align: Align
    dwell_s: int = Field(ge=1, le=3600)
    size: str = Field(max_length=20)
    ward: str = Field(default="", max_length=63)


def _page_errors(exc: ValidationError) -> dict[str, list[str]]:
    """A page model's errors under the form's field names (``dwell_ms`` is typed in seconds)."""
    errors = field_errors(exc)
    if "dwell_ms" in errors:
        errors["dwell_s"] = errors.pop("dwell_ms")
    return errors


def _compose_response(request: Request, values: dict[str, Any], errors: dict[str, list[str]],
                      sizes: list[str], ward_choices: list[tuple[str, str]]) -> Response:
    return render(request, "signs/_compose.html",
                  {"compose": values, "compose_errors": errors, "sizes": sizes, "previews": [], "warnings": [],
                   "saved": None, "ward_choices": ward_choices, **_labels()}, status_code=422)


@router.post("/signs/compose")
def compose(request: Request, session: SessionDep, actions: SignActionsDep, user: ConsoleOfficerDep,
            title: Annotated[str, Form(max_length=1000)] = "", lines: Annotated[str, Form(max_length=20_000)] = "",
            mode: Annotated[str, Form(max_length=40)] = "", colour: Annotated[str, Form(max_length=40)] = "",
            align: Annotated[str, Form(max_length=40)] = "", dwell_s: Annotated[str, Form(max_length=20)] = "",
            size: Annotated[str, Form(max_length=40)] = DEFAULT_SIZE,
            ward: Annotated[str, Form(max_length=63)] = "",
            image: Annotated[UploadFile | None, File()] = None) -> Response:
    """Saves new content from the form (text page, picture page or both) in the ward chosen (staff of one
    ward: theirs) and shows its previews."""
    values = {"title": title, "lines": lines, "mode": mode, "colour": colour, "align": align, "dwell_s": dwell_s,
              "size": size, "ward": ward}
    sizes = preview_sizes(session, wards_of(session, user))
    choices = _ward_choices(session, user)
    with speaking_to(request):
        errors: dict[str, list[str]] = {}
        try:
            form = ComposeForm.model_validate(values)
        except ValidationError as exc:
            errors.update(field_errors(exc))
        if "size" not in errors and panel_of(size) is None:
            errors["size"] = [gettext(_SIZE_MESSAGE)]
        text_lines = [line for line in lines.splitlines() if line.strip()]
        data = image.file.read(MAX_IMAGE_BYTES + 1) if image is not None and image.filename else b""
        if not text_lines and not data:
            errors.setdefault("lines", []).append(gettext(_NOTHING_MESSAGE))
        if errors:
            return _compose_response(request, values, errors, sizes, choices)
        pages: list[SignPage] = []
        if text_lines:
            try:
                pages.append(TextPage(lines=text_lines, mode=form.mode, colour=form.colour, align=form.align,
                                      dwell_ms=form.dwell_s * 1000))
            except ValidationError as exc:
                errors.update(_page_errors(exc))
        if data:
            try:
                stored, mime, _width, _height = actions.upload_image(session, data, user)
                pages.append(ImagePage(sha256=stored.sha256, size=stored.size, mime=mime,  # type: ignore[arg-type]
                                       dwell_ms=form.dwell_s * 1000))
            except (ImageTooLarge, SignInputError, LayoutError, ValidationError):
                errors["image"] = [gettext(_IMAGE_MESSAGE) % {"kb": MAX_IMAGE_BYTES // 1024}]
        if errors:
            return _compose_response(request, values, errors, sizes, choices)
        try:
            body = SignContentInput(title=form.title, pages=pages, ward=ward or None)
            row = actions.create_content(session, body, user)
        except ValidationError as exc:
            return _compose_response(request, values, _page_errors(exc), sizes, choices)
        except SignInputError as exc:
            return _compose_response(request, values, _refusal(exc), sizes, choices)
        found = previews(session, actions.signs, row, form.size)
        assign = _assign_context(session, user, {**_assign_defaults(), "content_id": row.id, "title": row.title,
                                                 "ward": row.ward_id}, {})
        return render(request, "signs/_compose.html", {
            "compose": values, "compose_errors": {}, "sizes": sizes, "previews": found,
            "warnings": actions.signs.warnings(list(row.pages)), "saved": row, "oob_assign": True, **assign})


# putting content on signs ------------------------------------------------------------------------------------


class AssignForm(BaseModel):
    """The "put on signs" form's own fields (the item itself is checked by the API's model)."""

    model_config = ConfigDict(extra="forbid")

    start: datetime | None = None
    duration_min: int = Field(ge=1, le=527_040)
    repeat: str = Field(default="", pattern=r"^(|FREQ=DAILY|FREQ=WEEKLY)$")


_ITEM_FIELDS: Final = {"duration_ms": "duration_min", "rrule": "repeat", "zones": "targets", "signs": "targets",
                       "agents": "targets", "all": "targets"}


def _refusal(exc: SignInputError) -> dict[str, list[str]]:
    """The sign service's refusal of one field, translated, under that field's name."""
    return field_errors([{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}]) or {
        "__all__": [translate_error({"type": "value_error", "msg": exc.message})]}


def _item_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        out.setdefault(_ITEM_FIELDS.get(name, name), []).extend(messages)
    return out


@router.post("/signs/items")
def assign(request: Request, session: SessionDep, actions: SignActionsDep, settings: SettingsDep,
           user: ConsoleOfficerDep,
           content_id: Annotated[str, Form(max_length=64)] = "", title: Annotated[str, Form(max_length=1000)] = "",
           target_all: Annotated[str, Form(max_length=10)] = "",
           zones: Annotated[list[str] | None, Form(max_length=1000)] = None,
           signs: Annotated[list[str] | None, Form(max_length=1000)] = None,
           priority: Annotated[str, Form(max_length=20)] = "normal", start: Annotated[str, Form(max_length=40)] = "",
           duration_min: Annotated[str, Form(max_length=20)] = "",
           repeat: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Puts content on signs from a time for some minutes, once or repeating (pending if approval is on); the
    item belongs to the content's ward and reaches only that ward's boards."""
    values: dict[str, Any] = {"content_id": content_id, "title": title, "target_all": bool(target_all),
                              "zones": list(zones or []), "signs": list(signs or []), "priority": priority,
                              "start": start, "duration_min": duration_min, "repeat": repeat}
    tz = settings.tz

    def refuse(errors: dict[str, list[str]]) -> Response:
        return render(request, "signs/_assign.html", _assign_context(session, user, values, errors), status_code=422)

    with speaking_to(request):
        try:
            form = AssignForm.model_validate({"start": start or None, "duration_min": duration_min,
                                              "repeat": repeat})
        except ValidationError as exc:
            return refuse(field_errors(exc))
        if not target_all and not values["zones"] and not values["signs"]:
            return refuse({"targets": [gettext(_NO_TARGET)]})
        targets: dict[str, Any] = {"all": True} if target_all else {"zones": values["zones"],
                                                                    "signs": values["signs"]}
        when = form.start if form.start is not None else datetime.now(tz).replace(tzinfo=None)
        ward = _content_ward(session, user, content_id)
        if ward is None:
            return refuse(_refusal(SignInputError("content_id", f"no sign content {content_id!r}")))
        try:
            body = SignItemInput.model_validate({
                "content_id": content_id, "title": title, "priority": priority, "targets": targets,
                "start": when, "rrule": form.repeat or None, "duration_ms": form.duration_min * 60_000,
                "ward": ward})
        except ValidationError as exc:
            return refuse(_item_errors(field_errors(exc)))
        try:
            actions.create_item(session, body, user)
        except SignInputError as exc:
            return refuse(_item_errors(_refusal(exc)))
    fresh = _assign_defaults()
    fresh["content_id"] = content_id
    notice = N_("Sent for approval.") if settings.require_approval else N_("Put on the signs.")
    return render(request, "signs/_assign.html", _assign_context(session, user, fresh, {}, notice),
                  headers={"HX-Trigger": "signs-changed"})


def _content_ward(session: Session, user: User, content_id: str) -> str | None:
    """The ward of content the user can see (None for any other: the item is then refused as unknown content)."""
    row = session.get(SignContent, content_id) if content_id else None
    return row.ward_id if row is not None and row.ward_id in wards_of(session, user) else None


def _decided(request: Request, session: Session, user: User, call: Any) -> Response:
    """Runs an action on a sign item; answers with the refreshed item list or a translated refusal."""
    try:
        call()
    except SignForbidden as exc:
        return error_page(request, 403, _FOUR_EYES if "someone other" in str(exc) else None)
    except SignInputError:
        return error_page(request, 409, _NOT_PENDING)
    except SignNotFound:
        return error_page(request, 404)
    return render(request, "signs/_items.html", {"items": _items(session, wards_of(session, user)),
                                                 "can_compose": _can_compose(user),
                                                 "can_decide": _can_decide(user), **_labels()},
                  headers={"HX-Trigger": "signs-changed"})


@router.post("/signs/items/{item_id}/approve")
def approve(request: Request, session: SessionDep, actions: SignActionsDep, user: ConsoleApproverDep,
            item_id: str) -> Response:
    """An approver (not the author) puts a pending item on the signs."""
    return _decided(request, session, user, lambda: actions.decide(session, item_id, user, True))


@router.post("/signs/items/{item_id}/reject")
def reject(request: Request, session: SessionDep, actions: SignActionsDep, user: ConsoleApproverDep,
           item_id: str) -> Response:
    """An approver refuses a pending item."""
    return _decided(request, session, user, lambda: actions.decide(session, item_id, user, False))


@router.delete("/signs/items/{item_id}")
def cancel(request: Request, session: SessionDep, actions: SignActionsDep, user: ConsoleOfficerDep,
           item_id: str) -> Response:
    """Takes an item off every sign (its record stays)."""
    return _decided(request, session, user, lambda: actions.cancel_item(session, item_id, user))

