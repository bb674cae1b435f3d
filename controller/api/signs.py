"""``/api/v1/signs``, ``/api/v1/sign-contents``, ``/api/v1/sign-items``, ``/api/v1/sign-images``: LED signs.

Officers compose content and put it on signs (items, one-off or recurring); technicians attach signs to
agents; all staff may preview content and see what every sign shows now. Previews are the exact image
the board shows (``image/png``), drawn by the renderer the agents use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import wards_of
from controller.api.deps import (
    ApproverDep,
    OfficerDep,
    SessionDep,
    SettingsDep,
    SignActionsDep,
    SignsDep,
    StaffDep,
    TechnicianDep,
)
from controller.api.errors import AUTHENTICATED, errors
from controller.signs import (
    SignAttach,
    SignContentInput,
    SignForbidden,
    SignInputError,
    SignItemInput,
    SignNotFound,
    SignService,
)
from controller.signs.actions import ImageTooLarge, SignActions
from controller.storage.models import Device, Sign, SignContent, SignItem, User
from devices.led.content import Panel
from devices.led.fonts import FontError
from devices.led.render import LayoutError

router = APIRouter(prefix="/api/v1", tags=["signs"], responses=AUTHENTICATED)


class SignContentPublic(BaseModel):
    """Sign content as the API shows it."""

    id: str
    ward: str
    title: str
    pages: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    #: Characters the sign font cannot draw (shown as a placeholder box).
    warnings: list[str] = []


class SignPublic(BaseModel):
    """A sign attached to an agent."""

    id: str
    #: Its agent's ward.
    ward: str
    agent_id: str
    name: str
    width: int
    height: int
    description: str


class SignItemPublic(BaseModel):
    """A sign item (times are local wall-clock in the site's zone)."""

    id: str
    ward: str
    revision: int
    content_id: str
    title: str
    priority: str
    targets: dict[str, Any]
    start: str
    rrule: str | None
    until: str | None
    duration_ms: int
    status: str
    timezone: str


class SignImagePublic(BaseModel):
    """An uploaded sign image, to be named by an image page."""

    sha256: str
    size: int
    mime: str
    width: int
    height: int


class SignNowPublic(BaseModel):
    """What a sign shows now (as its agent last reported) and what the controller planned."""

    sign: SignPublic
    agent_status: str
    reported: dict[str, Any] | None
    state_ts: int | None
    playlist_version: int | None
    planned: dict[str, Any] | None
    last_fault: dict[str, Any] | None


def _invalid(exc: SignInputError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}])


def content_public(row: SignContent, warnings: list[str] | None = None) -> SignContentPublic:
    """The public view of content."""
    return SignContentPublic(id=row.id, ward=row.ward_id, title=row.title, pages=list(row.pages),
                             created_at=row.created_at, updated_at=row.updated_at, warnings=warnings or [])


def sign_public(row: Sign, ward: str) -> SignPublic:
    """The public view of a sign (``ward``: its agent's)."""
    return SignPublic(id=row.id, ward=ward, agent_id=row.agent_id, name=row.name, width=row.width, height=row.height,
                      description=row.description)


def item_public(row: SignItem, timezone: str) -> SignItemPublic:
    """The public view of a sign item."""
    return SignItemPublic(id=row.id, ward=row.ward_id, revision=row.revision, content_id=row.content_id,
                          title=row.title, priority=row.priority, targets=dict(row.targets), start=row.start_local,
                          rrule=row.rrule, until=row.until_local, duration_ms=row.duration_ms, status=row.status,
                          timezone=timezone)


def _png(data: bytes, warnings: tuple[str, ...], font_px: int) -> Response:
    headers = {"Cache-Control": "no-store", "X-Font-Px": str(font_px)}
    if warnings:
        # Header values are Latin-1: the warning's characters are escaped, the count says there were some.
        headers["X-Sign-Warnings"] = str(len(warnings))
    return Response(data, media_type="image/png", headers=headers)


def _preview(session: Session, signs: SignService, content_id: str, page: int, panel: Panel,
             wards: frozenset[str]) -> Response:
    try:
        data, rendered = signs.preview_png(session, content_id, page, panel, wards)
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except LayoutError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except FontError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return _png(data, rendered.warnings, rendered.font_px)


# content ------------------------------------------------------------------------------------------------


@router.post("/sign-contents", status_code=status.HTTP_201_CREATED,
             responses=errors(404, e404="no such ward among the caller's"))
def create_content(body: SignContentInput, session: SessionDep, actions: SignActionsDep,
                   user: OfficerDep) -> SignContentPublic:
    """New sign content (text pages, or image pages naming uploaded images)."""
    try:
        row = actions.create_content(session, body, user)
    except SignInputError as exc:
        raise _invalid(exc) from None
    return content_public(row, actions.signs.warnings(list(row.pages)))


@router.put("/sign-contents/{content_id}", responses=errors(404))
def replace_content(content_id: str, body: SignContentInput, session: SessionDep, actions: SignActionsDep,
                    user: OfficerDep) -> SignContentPublic:
    """Replaces content; signs showing it get it with their next playlist."""
    try:
        row = actions.replace_content(session, content_id, body, user)
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except SignInputError as exc:
        raise _invalid(exc) from None
    return content_public(row, actions.signs.warnings(list(row.pages)))


@router.get("/sign-contents")
def list_contents(session: SessionDep, user: StaffDep) -> list[SignContentPublic]:
    """Every piece of sign content of the caller's wards, newest first."""
    query = select(SignContent).where(SignContent.ward_id.in_(wards_of(session, user)))
    return [content_public(r) for r in session.scalars(query.order_by(SignContent.created_at.desc()))]


@router.get("/sign-contents/{content_id}", responses=errors(404))
def get_content(content_id: str, session: SessionDep, signs: SignsDep, user: StaffDep) -> SignContentPublic:
    """One piece of content."""
    try:
        row = signs.content(session, content_id, wards_of(session, user))
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return content_public(row, signs.warnings(list(row.pages)))


#: A panel size as ``Panel.parse`` takes it, bounds included: width 8–1920 by height 7–1080, up to four digits
#: each (leading zeros allowed), ``x``, ``X`` or ``×`` between, spaces around.
PANEL_SIZE_PATTERN = (r"^\s*(0{0,3}[89]|0{0,2}[1-9][0-9]|0?[1-9][0-9]{2}|1[0-8][0-9]{2}|19[01][0-9]|1920)\s*[xX×]"
                      r"\s*(0{0,3}[7-9]|0{0,2}[1-9][0-9]|0?[1-9][0-9]{2}|10[0-7][0-9]|1080)\s*$")


@router.get("/sign-contents/{content_id}/preview.png", responses=errors(404, 503), response_class=Response)
def preview_content(content_id: str, session: SessionDep, signs: SignsDep, user: StaffDep,
                          size: Annotated[str, Query(pattern=PANEL_SIZE_PATTERN, description="panel size, e.g. 96x16")],
                          page: Annotated[int, Query(ge=0)] = 0) -> Response:
    """The exact image a board of ``size`` shows for one page (422 when it does not fit)."""
    try:
        panel = Panel.parse(size)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _preview(session, signs, content_id, page, panel, wards_of(session, user))


@router.post("/sign-images", responses=errors(415), status_code=status.HTTP_201_CREATED)
async def upload_image(request: Request, session: SessionDep, actions: SignActionsDep,
                       user: OfficerDep) -> SignImagePublic:
    """A PNG or JPEG as the request body (≤ 1 MB), decoded to check it, then stored by its SHA-256."""
    data = await request.body()
    try:
        row, mime, width, height = await run_in_threadpool(actions.upload_image, session, data, user)
    except ImageTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    except LayoutError as exc:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc)) from None
    except SignInputError as exc:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, exc.message) from None
    return SignImagePublic(sha256=row.sha256, size=row.size, mime=mime, width=width, height=height)


# signs --------------------------------------------------------------------------------------------------


@router.get("/signs")
def list_signs(session: SessionDep, user: StaffDep) -> list[SignPublic]:
    """Every sign attached to an agent of the caller's wards."""
    rows = session.execute(select(Sign, Device.ward_id).join(Device, Device.id == Sign.agent_id)
                           .where(Device.ward_id.in_(wards_of(session, user))).order_by(Sign.id)).tuples()
    return [sign_public(s, ward) for s, ward in rows]


@router.post("/signs", status_code=status.HTTP_201_CREATED)
def attach_sign(body: SignAttach, session: SessionDep, actions: SignActionsDep, user: TechnicianDep) -> SignPublic:
    """Attaches a board to an agent (its id is ``{agent}.{name}``)."""
    try:
        row = actions.attach(session, body, user)
    except SignInputError as exc:
        raise _invalid(exc) from None
    return sign_public(row, actions.signs.ward_of(session, row))


@router.get("/signs/now")
def signs_now(session: SessionDep, signs: SignsDep, user: StaffDep) -> list[SignNowPublic]:
    """What each sign of the caller's wards shows now: its agent's last report, the controller's plan, and its
    last fault."""
    return [SignNowPublic(sign=sign_public(n["sign"], n["ward"]), agent_status=n["agent_status"],
                          reported=n["reported"], state_ts=n["state_ts"], playlist_version=n["playlist_version"],
                          planned=n["planned"], last_fault=n["last_fault"])
            for n in signs.now(session, wards_of(session, user))]


@router.delete("/signs/{sign_id}", responses=errors(404), status_code=status.HTTP_204_NO_CONTENT)
def detach_sign(sign_id: str, session: SessionDep, actions: SignActionsDep, user: TechnicianDep) -> Response:
    """Detaches a board; its agent's playlist stops naming it."""
    try:
        actions.detach(session, sign_id, user)
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/signs/{sign_id}/preview.png", responses=errors(404, 503), response_class=Response)
def preview_on_sign(sign_id: str, session: SessionDep, signs: SignsDep, user: StaffDep,
                          content_id: Annotated[str, Query(min_length=1, max_length=32)],
                          page: Annotated[int, Query(ge=0)] = 0) -> Response:
    """The exact image this sign shows for one page of content (of the sign's own ward)."""
    try:
        sign = signs.sign(session, sign_id, wards_of(session, user))
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    panel = Panel(width=sign.width, height=sign.height)
    return _preview(session, signs, content_id, page, panel, frozenset({signs.ward_of(session, sign)}))


# items --------------------------------------------------------------------------------------------------


@router.post("/sign-items", responses=errors(404, 409), status_code=status.HTTP_201_CREATED)
def create_item(body: SignItemInput, session: SessionDep, actions: SignActionsDep, settings: SettingsDep,
                user: OfficerDep) -> SignItemPublic:
    """Puts content on signs (zones, agents or named signs) from ``start`` for ``duration_ms``, optionally recurring."""
    try:
        row = actions.create_item(session, body, user)
    except SignInputError as exc:
        raise _invalid(exc) from None
    return item_public(row, settings.timezone)


class SignDecision(BaseModel):
    """An approver's answer to a pending sign item."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


def _decide(item_id: str, approve: bool, body: SignDecision, session: Session, actions: SignActions,
            user: User) -> SignItemPublic:
    try:
        row = actions.decide(session, item_id, user, approve, body.reason)
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except SignForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except SignInputError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
    return item_public(row, actions.signs.settings.timezone)


@router.post("/sign-items/{item_id}/approve", responses=errors(404))
def approve_item(item_id: str, session: SessionDep, actions: SignActionsDep, user: ApproverDep,
                 body: SignDecision | None = None) -> SignItemPublic:
    """Puts a pending item on the signs (an approver or admin other than its author)."""
    return _decide(item_id, True, body or SignDecision(), session, actions, user)


@router.post("/sign-items/{item_id}/reject", responses=errors(404))
def reject_item(item_id: str, session: SessionDep, actions: SignActionsDep, user: ApproverDep,
                body: SignDecision | None = None) -> SignItemPublic:
    """Refuses a pending item; the reason goes into the audit trail."""
    return _decide(item_id, False, body or SignDecision(), session, actions, user)


@router.get("/sign-items")
def list_items(session: SessionDep, settings: SettingsDep, user: StaffDep,
               include_cancelled: bool = False) -> list[SignItemPublic]:
    """Sign items of the caller's wards, newest first (pending and active; ``include_cancelled`` adds
    cancelled and rejected)."""
    query = (select(SignItem).where(SignItem.ward_id.in_(wards_of(session, user)))
             .order_by(SignItem.created_at.desc()))
    if not include_cancelled:
        query = query.where(SignItem.status.in_(("active", "pending")))
    return [item_public(r, settings.timezone) for r in session.scalars(query)]


@router.delete("/sign-items/{item_id}", responses=errors(404))
def cancel_item(item_id: str, session: SessionDep, actions: SignActionsDep, settings: SettingsDep,
                user: OfficerDep) -> SignItemPublic:
    """Takes an item off every sign (the record stays, cancelled)."""
    try:
        row = actions.cancel_item(session, item_id, user)
    except SignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return item_public(row, settings.timezone)
