"""Cameras for security staff: a grid of live views, one camera with its PTZ pad, and motion events.

Pictures come straight from the camera API (``/api/v1/cameras/{id}/live.mjpeg``, event snapshots): an
``<img>`` sends the console's session cookie and a GET needs no CSRF token, so the API's own checks,
viewer limit and audit record ("camera viewed") apply unchanged. PTZ moves are posted by the page's
script to the API too (press and hold, release to stop). What the console renders itself — the grid,
status, presets, the event list — comes from the same functions the API routes use
(controller/cameras/operations.py and the camera service).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from controller.accounts.reach import OutsideRole, wards_of
from controller.api.deps import CamerasDep, SessionDep, SettingsDep
from controller.cameras import operations
from controller.cameras.events import CameraEventMessage
from controller.cameras.gateway import GatewayFull
from controller.cameras.motion import MotionSettings
from controller.cameras.onvif import CameraError
from controller.cameras.schemas import CameraStatusPublic, CameraUpdate, PresetCreate
from controller.cameras.service import (
    TECHNICIAN_ROLES,
    CameraConflict,
    CameraNotFound,
    CameraService,
    LinkDown,
    RegistrationError,
)
from controller.storage.models import Camera, User
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.pages.map import location_context, location_form
from controller.web.session import ConsoleSecurityDep
from controller.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

#: Live tiles per grid page. Each tile holds one HTTP connection open, and a browser keeps at most six
#: per site over HTTP/1.1 (the page's event stream takes one more, htmx needs one for its requests);
#: behind an HTTP/2 proxy that limit goes away and ``?per_page=`` shows more at once.
TILES_PER_PAGE = 4
MAX_TILES_PER_PAGE = 16
#: Events shown in a list; older ones stay in the API (``/api/v1/camera-events``).
EVENTS_SHOWN = 20

CameraId = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9_-]+$")]
PresetToken = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

#: A camera's health as staff read it (msgids).
STATUS_LABELS: dict[str, str] = {
    "online": N_("Online"),
    "fault": N_("Fault"),
    "unknown": N_("Not checked yet"),
}
#: Event types as shown (msgids).
EVENT_LABELS: dict[str, str] = {
    "camera.motion": N_("Motion"),
    "camera.fault": N_("Camera fault"),
    "camera.recovered": N_("Camera back online"),
}
#: The camera API's errors by status, said for staff (msgids); the API's own reason (English) follows.
_API_ERRORS: dict[int, str] = {
    404: N_("There is no such camera. It may have been removed."),
    409: N_("This camera has no PTZ: it cannot be moved."),
    422: N_("The camera's stored settings cannot be used. Ask a technician to check it."),
    502: N_("The camera did not carry out the command."),
    503: N_("The camera cannot be reached right now. Try again in a moment."),
}


#: The camera service's refusals, with the status the API answers them with.
_REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (CameraNotFound, 404), (CameraConflict, 409), (RegistrationError, 422), (CameraError, 502),
    (LinkDown, 503), (GatewayFull, 503))
_CAMERA_REFUSALS = (CameraNotFound, CameraConflict, RegistrationError, CameraError, LinkDown, GatewayFull)


def _api_error(exc: Exception) -> tuple[str, str | None]:
    """A sentence (msgid) for a camera service refusal, and its own reason as a detail."""
    status = next((code for kind, code in _REFUSALS if isinstance(exc, kind)), 502)
    reason = exc.message if isinstance(exc, RegistrationError | CameraError) else str(exc)
    return _API_ERRORS.get(status, N_("The camera did not carry out the command.")), reason or None


def _watched(session: SessionDep, user: User) -> frozenset[str]:
    """The wards whose cameras the user watches."""
    return wards_of(session, user, ("security",))


def _event_rows(session: SessionDep, user: User, camera_id: str | None) -> list[dict[str, object]]:
    """The newest events of the user's wards as the API lists them, with their time as a datetime and their
    camera's name."""
    wards = _watched(session, user)
    events: list[CameraEventMessage] = operations.camera_events(session, camera_id=camera_id, limit=EVENTS_SHOWN,
                                                                wards=wards)
    names = dict(session.execute(select(Camera.id, Camera.name).where(Camera.ward_id.in_(wards)))
                 .tuples().all()) if events else {}
    return [{"event": e, "at": datetime.fromtimestamp(e.ts / 1000, tz=UTC), "camera_name": names.get(e.camera_id)
             or e.camera_id, "label": EVENT_LABELS.get(e.type, e.type)} for e in events]


def _status(session: SessionDep, cameras: CamerasDep, camera_id: str, user: User) -> CameraStatusPublic:
    try:
        return operations.camera_status(session, cameras, camera_id, user)
    except CameraNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _camera(session: SessionDep, camera_id: str, user: User) -> Camera:
    """A camera of the user's wards where they watch cameras (another ward's is as missing as none)."""
    try:
        return CameraService.camera(session, camera_id, user, ("security",))
    except CameraNotFound:
        raise HTTPException(404, N_("There is no such camera. It may have been removed.")) from None


@router.get("/cameras")
def camera_grid(request: Request, session: SessionDep, user: ConsoleSecurityDep,
                page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                per_page: Annotated[int, Query(ge=1, le=MAX_TILES_PER_PAGE)] = TILES_PER_PAGE) -> Response:
    """Live views of every camera of the user's wards, a few per page, with the newest events beside them."""
    wards = _watched(session, user)
    total = session.scalar(select(func.count()).select_from(Camera).where(Camera.ward_id.in_(wards))) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(page, pages)
    cameras = list(session.scalars(select(Camera).where(Camera.ward_id.in_(wards))
                                   .order_by(Camera.zone, Camera.name, Camera.id)
                                   .offset((page - 1) * per_page).limit(per_page)))
    return render(request, "cameras/grid.html", {
        "cameras": cameras, "total": total, "page": page, "pages": pages, "per_page": per_page,
        "default_per_page": TILES_PER_PAGE, "status_labels": STATUS_LABELS,
        "events": _event_rows(session, user, None), "event_camera": None})


@router.get("/camera-events")
def event_list(request: Request, session: SessionDep, user: ConsoleSecurityDep,
               camera: Annotated[str | None, Query(max_length=63, pattern=r"^[a-z0-9_-]+$")] = None) -> Response:
    """The event list fragment (refetched when the camera event stream says something happened)."""
    return render(request, "cameras/_events.html", {"events": _event_rows(session, user, camera),
                                                     "event_camera": camera})


@router.get("/cameras/{camera_id}")
def camera_view(camera_id: CameraId, request: Request, session: SessionDep, cameras: CamerasDep,
                settings: SettingsDep, user: ConsoleSecurityDep) -> Response:
    """One camera (of the user's wards) large, its status, PTZ pad and presets (if it has PTZ), its own
    events, and where it is on the map (placed by the ward's technicians)."""
    camera = _camera(session, camera_id, user)
    status = _status(session, cameras, camera_id, user)
    return render(request, "cameras/view.html", {
        "camera": camera, "status": status, "status_labels": STATUS_LABELS,
        "events": _event_rows(session, user, camera_id), "event_camera": camera_id,
        "motion": _motion_form_values(camera.motion or {}), "errors": {}, "notice": None,
        "can_place": camera.ward_id in wards_of(session, user, TECHNICIAN_ROLES),
        "location": {"camera_id": camera_id, "errors": {}, "notice": None,
                     **location_context(settings, session, {camera.ward_id}, camera.lat, camera.lon)}})


@router.post("/cameras/{camera_id}/location")
async def save_location(camera_id: CameraId, request: Request, session: SessionDep, cameras: CamerasDep,
                        settings: SettingsDep, user: ConsoleSecurityDep,
                        lat: Annotated[str, Form(max_length=100)] = "",
                        lon: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Sets (or, with both boxes empty, clears) where the camera is on the map (as ``PATCH
    /api/v1/cameras/{id}`` with ``lat``/``lon``; the ward's technicians only)."""
    camera = _camera(session, camera_id, user)
    context: dict[str, object] = {"camera_id": camera_id, "notice": None,
                                  **location_context(settings, session, {camera.ward_id}, lat, lon)}
    with speaking_to(request):
        location, errors = location_form(lat, lon)
        try:
            body = CameraUpdate.model_validate(location)
        except ValidationError as exc:
            errors = {**field_errors(exc), **errors}
    if errors:
        return render(request, "map/_camera_location.html", {**context, "errors": errors}, status_code=422)
    try:
        await cameras.update(camera_id, body, user)
    except OutsideRole:
        return render(request, "map/_camera_location.html", {
            **context, "errors": {"__all__": [N_("Only a technician of this camera's ward can place it.")]}},
            status_code=403)
    except _CAMERA_REFUSALS as exc:
        message, _reason = _api_error(exc)
        return render(request, "map/_camera_location.html", {**context, "errors": {"__all__": [message]}},
                      status_code=422)
    return render(request, "map/_camera_location.html",
                  {**context, "errors": {}, "notice": N_("Location saved.")})


@router.get("/cameras/{camera_id}/status")
def camera_status(camera_id: CameraId, request: Request, session: SessionDep, cameras: CamerasDep,
                  user: ConsoleSecurityDep, part: Annotated[str, Query(pattern="^(facts|badge)$")] = "facts",
                  ) -> Response:
    """A status fragment — the facts of the single view, or a grid tile's badge — refetched when the camera
    event stream reports a fault or a recovery."""
    camera = _camera(session, camera_id, user)
    status = _status(session, cameras, camera_id, user)
    template = "cameras/_status.html" if part == "facts" else "cameras/_badge.html"
    return render(request, template, {"camera": camera, "status": status, "status_labels": STATUS_LABELS})


@router.get("/cameras/{camera_id}/presets")
async def presets(camera_id: CameraId, request: Request, cameras: CamerasDep,
                  user: ConsoleSecurityDep) -> Response:
    """The camera's stored positions, read from the camera itself (so loaded after the page)."""
    try:
        found = await operations.ptz_presets(cameras, camera_id, user)
    except _CAMERA_REFUSALS as exc:
        message, reason = _api_error(exc)
        return render(request, "cameras/_presets.html", {"camera_id": camera_id, "presets": [],
                                                          "error": message, "reason": reason})
    return render(request, "cameras/_presets.html", {"camera_id": camera_id, "presets": found, "error": None,
                                                      "reason": None})


@router.post("/cameras/{camera_id}/presets/{preset_token}/goto")
async def goto_preset(camera_id: CameraId, preset_token: PresetToken, request: Request, cameras: CamerasDep,
                      user: ConsoleSecurityDep) -> Response:
    """Moves the camera to a stored position (audited, as through the API) and says so."""
    try:
        await operations.ptz_goto(cameras, camera_id, preset_token, user)
    except _CAMERA_REFUSALS as exc:
        message, reason = _api_error(exc)
        return render(request, "cameras/_notice.html", {"level": "error", "message": message, "reason": reason})
    return render(request, "cameras/_notice.html", {"level": "ok", "message": N_("The camera is moving there."),
                                                    "reason": None})


@router.post("/cameras/{camera_id}/presets")
async def save_preset(camera_id: CameraId, request: Request, cameras: CamerasDep, user: ConsoleSecurityDep,
                      name: Annotated[str, Form(max_length=1024)] = "") -> Response:
    """Stores where the camera points now under a name (the API's model checks the name)."""
    context: dict[str, object] = {"camera_id": camera_id, "name": name[:64], "notice": None, "reason": None}
    try:
        body = PresetCreate(name=name.strip())
    except ValidationError as exc:
        with speaking_to(request):
            errors = field_errors(exc)
        return render(request, "cameras/_preset_form.html", {**context, "errors": errors}, status_code=422)
    try:
        await operations.ptz_set_preset(cameras, camera_id, body.name, user)
    except _CAMERA_REFUSALS as exc:
        message, reason = _api_error(exc)
        return render(request, "cameras/_preset_form.html",
                      {**context, "errors": {"__all__": [message]}, "reason": reason}, status_code=422)
    # The presets list reloads itself on this event (hx-trigger="presets-changed from:body").
    return render(request, "cameras/_preset_form.html",
                  {**context, "name": "", "errors": {}, "notice": N_("Position stored.")},
                  headers={"HX-Trigger": "presets-changed"})


def _motion_form_values(settings: dict[str, object]) -> dict[str, object]:
    """The motion form's values from a camera's stored settings (sensitivity shown in percent)."""
    current = MotionSettings.model_validate(settings) if settings else MotionSettings()
    return {"enabled": current.enabled, "sensitivity": round(current.sensitivity * 100),
            "cooldown_s": current.cooldown_s}


def _percent(raw: str, errors: dict[str, list[str]]) -> float | None:
    """A 0–100 percentage typed by staff, as 0–1; a message under the field otherwise."""
    try:
        value = float(raw.strip().rstrip("%").replace(",", "."))
    except ValueError:
        errors["sensitivity"] = [gettext("Enter a number.")]
        return None
    if not 0 <= value <= 100:
        errors["sensitivity"] = [gettext("Must be at least %(ge)s.") % {"ge": 0} if value < 0
                                 else gettext("Must be at most %(le)s.") % {"le": 100}]
        return None
    return value / 100


@router.post("/cameras/{camera_id}/motion")
async def save_motion(camera_id: CameraId, request: Request, session: SessionDep, cameras: CamerasDep,
                      user: ConsoleSecurityDep, enabled: Annotated[str, Form(max_length=10)] = "",
                      sensitivity: Annotated[str, Form(max_length=20)] = "50",
                      cooldown_s: Annotated[str, Form(max_length=20)] = "10") -> Response:
    """Turns motion detection on or off with its sensitivity and pause between events (the API's model and
    function; the camera's detection zones and debounce are kept as they are)."""
    stored = dict(_camera(session, camera_id, user).motion or {})
    values: dict[str, object] = {"enabled": enabled == "on", "sensitivity": sensitivity[:20],
                                 "cooldown_s": cooldown_s[:20]}
    context: dict[str, object] = {"camera_id": camera_id, "motion": values, "notice": None}
    errors: dict[str, list[str]] = {}
    with speaking_to(request):
        share = _percent(sensitivity, errors)
        try:
            body = MotionSettings.model_validate({**stored, "enabled": enabled == "on", "sensitivity": share or 0.0,
                                                  "cooldown_s": cooldown_s.strip().replace(",", ".")})
        except ValidationError as exc:
            errors.update({k: v for k, v in field_errors(exc).items() if k not in errors})
    if errors:
        return render(request, "cameras/_motion_form.html", {**context, "errors": errors}, status_code=422)
    try:
        await cameras.set_motion(camera_id, body, user)
    except _CAMERA_REFUSALS as exc:
        message, _reason = _api_error(exc)
        return render(request, "cameras/_motion_form.html", {**context, "errors": {"__all__": [message]}},
                      status_code=422)
    return render(request, "cameras/_motion_form.html",
                  {**context, "motion": _motion_form_values(body.model_dump()), "errors": {},
                   "notice": N_("Motion detection saved.")}, headers={"HX-Trigger": "camera-changed"})
