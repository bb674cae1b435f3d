"""``/api/v1/cameras``, ``/api/v1/camera-events``, ``/api/v1/camera-discoveries``: cameras for security staff.

Technicians register, change and remove cameras; security staff watch them live, take snapshots,
move PTZ, set motion detection and follow events. Nothing here ever returns a camera's password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from controller.accounts.reach import wards_of
from controller.api.deps import (
    CredentialsDep,
    SecurityDep,
    SessionDep,
    TechnicianDep,
    authenticate,
    declare_roles,
    require_roles,
)
from controller.api.errors import AUTHENTICATED, errors, reasoned
from controller.cameras import operations
from controller.cameras.events import CameraEventMessage, EventHub
from controller.cameras.gateway import MJPEG_BOUNDARY, CameraGateway, GatewayFull
from controller.cameras.motion import MotionSettings
from controller.cameras.onvif import CameraError
from controller.cameras.operations import record_camera_action
from controller.cameras.schemas import (
    CameraFromDiscovery,
    CameraPublic,
    CameraRegister,
    CameraStatusPublic,
    CameraUpdate,
    DiscoverRequest,
    DiscoverSent,
    DiscoveryPublic,
    PresetCreate,
    PresetPublic,
    PtzMove,
)
from controller.cameras.service import (
    CameraConflict,
    CameraNotFound,
    CameraService,
    LinkDown,
    RegistrationError,
    camera_public,
)
from controller.storage.models import Camera, CameraDiscovery, CameraEvent, User

router = APIRouter(tags=["cameras"], responses=AUTHENTICATED)
#: What a route that calls the camera service through :func:`_errors` can answer besides the router's own.
_CAMERA_ERRORS = {**errors(404, 409, 503), **reasoned(502, "The camera answered badly or not at all.")}

#: Security staff and technicians both see the camera list and health (technicians to manage it).
ViewerDep = Annotated[User, Depends(require_roles("security", "technician"))]
SSE_KEEPALIVE_S = 15.0


async def _cameras(request: Request) -> CameraService:
    service: CameraService = request.app.state.controller.cameras
    return service


CamerasDep = Annotated[CameraService, Depends(_cameras)]
_WATCH_ROLES = frozenset({"security", "admin"})


async def _watcher(request: Request, credentials: CredentialsDep) -> User:
    """Security staff (or an admin), checked in one short database session of its own.

    Live views and event streams stay open for hours and arrive in crowds (a video wall opens dozens at
    once): the token is looked up and the session closed inside one worker-thread call, so no request
    holds a pooled connection or a thread-pool slot while it waits for another.
    """
    db = request.app.state.controller.db

    def lookup() -> User:
        with db.session() as session:
            user = authenticate(session, request, credentials)
            # The wards whose cameras they watch, read while the session is open (the event stream filters on it).
            request.state.watch_wards = wards_of(session, user, _WATCH_ROLES)
            return user

    user = await asyncio.to_thread(lookup)
    if not user.role_set & _WATCH_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs one of the roles: {', '.join(sorted(_WATCH_ROLES))}")
    return user


declare_roles(_watcher, _WATCH_ROLES)
#: Security staff for the long-lived camera requests (live view, snapshots, the event stream).
WatcherDep = Annotated[User, Depends(_watcher)]


async def _audit(request: Request, user: User, action: str, camera_id: str, detail: dict[str, object]) -> None:
    """Records a camera being watched or moved, in a short session of its own off the event loop."""
    await record_camera_action(request.app.state.controller.db, user, action, camera_id, detail)


@contextmanager
def _errors() -> Iterator[None]:
    """Maps the service's errors to HTTP answers with a reason code and a message."""
    try:
        yield
    except CameraNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except CameraConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except RegistrationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            {"reason": exc.reason, "message": exc.message}) from None
    except CameraError as exc:
        # The camera itself failed an operation (PTZ, snapshot): a bad gateway, not a bad request.
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, {"reason": exc.reason, "message": exc.message}) from None
    except (LinkDown, GatewayFull) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "10"}) from None


# registry -------------------------------------------------------------------------------------------


@router.get("/api/v1/cameras")
def list_cameras(session: SessionDep, user: ViewerDep) -> list[CameraPublic]:
    """Every camera of the caller's wards with its health."""
    query = select(Camera).where(Camera.ward_id.in_(wards_of(session, user))).order_by(Camera.id)
    return [camera_public(c) for c in session.scalars(query)]


@router.post("/api/v1/cameras", responses=_CAMERA_ERRORS, status_code=status.HTTP_201_CREATED)
async def register_camera(body: CameraRegister, cameras: CamerasDep, user: TechnicianDep) -> CameraPublic:
    """Registers a camera by address: read over ONVIF (or, with ``onvif: false``, checked for RTSP video)."""
    with _errors():
        return await cameras.register(body, user)


@router.post("/api/v1/cameras/discover", responses=_CAMERA_ERRORS, status_code=status.HTTP_202_ACCEPTED)
async def discover_cameras(body: DiscoverRequest, cameras: CamerasDep, user: TechnicianDep) -> DiscoverSent:
    """Asks an agent (signed ``camera.discover``) to look for ONVIF cameras; results appear as discoveries."""
    with _errors():
        command_id = await cameras.send_discover(body.agent_id, body.timeout_ms, user)
    return DiscoverSent(command_id=command_id, agent_id=body.agent_id)


@router.get("/api/v1/camera-discoveries")
def list_discoveries(session: SessionDep, user: TechnicianDep,
                     agent_id: str | None = None) -> list[DiscoveryPublic]:
    """What agents of the caller's wards found, newest first, with the camera registered from each (if any)."""
    wards = wards_of(session, user)
    query = (select(CameraDiscovery).where(CameraDiscovery.ward_id.in_(wards))
             .order_by(CameraDiscovery.last_seen_at.desc(), CameraDiscovery.id))
    if agent_id is not None:
        query = query.where(CameraDiscovery.agent_id == agent_id)
    registered = {c.discovery_endpoint: c.id for c in session.scalars(
        select(Camera).where(Camera.discovery_endpoint.is_not(None), Camera.ward_id.in_(wards)))}
    return [DiscoveryPublic(id=d.id, ward=d.ward_id, agent_id=d.agent_id, endpoint=d.endpoint, host=d.host,
                            xaddrs=list(d.xaddrs), scopes=list(d.scopes), types=list(d.types),
                            first_seen_at=d.first_seen_at, last_seen_at=d.last_seen_at,
                            camera_id=registered.get(d.endpoint))
            for d in session.scalars(query.limit(1000))]


@router.post("/api/v1/camera-discoveries/{discovery_id}/register", responses=_CAMERA_ERRORS,
             status_code=status.HTTP_201_CREATED)
async def register_discovered(discovery_id: int, body: CameraFromDiscovery, cameras: CamerasDep,
                              user: TechnicianDep) -> CameraPublic:
    """Registers a discovered camera with its credentials, agent and zone."""
    with _errors():
        return await cameras.register_discovered(discovery_id, body, user)


@router.get("/api/v1/cameras/{camera_id}", responses=_CAMERA_ERRORS)
def get_camera(camera_id: str, session: SessionDep, user: ViewerDep) -> CameraPublic:
    """One camera (of the caller's wards)."""
    with _errors():
        return camera_public(CameraService.camera(session, camera_id, user))


@router.patch("/api/v1/cameras/{camera_id}", responses=_CAMERA_ERRORS)
async def update_camera(camera_id: str, body: CameraUpdate, cameras: CamerasDep,
                        user: TechnicianDep) -> CameraPublic:
    """Changes name, agent, zone, credentials or profile (new credentials are tried on the camera first)."""
    with _errors():
        return await cameras.update(camera_id, body, user)


@router.delete("/api/v1/cameras/{camera_id}", responses=_CAMERA_ERRORS, status_code=status.HTTP_204_NO_CONTENT)
async def delete_camera(camera_id: str, cameras: CamerasDep, user: TechnicianDep) -> Response:
    """Removes a camera with its events and snapshots; live views of it end."""
    with _errors():
        await cameras.delete(camera_id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/v1/cameras/{camera_id}/status", responses=_CAMERA_ERRORS)
def camera_status(camera_id: str, session: SessionDep, cameras: CamerasDep,
                  user: ViewerDep) -> CameraStatusPublic:
    """Health (online / fault) and, while someone watches, the reader's fps, resolution and frame age."""
    with _errors():
        return operations.camera_status(session, cameras, camera_id, user)


@router.put("/api/v1/cameras/{camera_id}/motion", responses=_CAMERA_ERRORS)
async def set_motion(camera_id: str, body: MotionSettings, cameras: CamerasDep, user: SecurityDep) -> CameraPublic:
    """Turns motion detection on or off, with its zones, sensitivity and debounce."""
    with _errors():
        return await cameras.set_motion(camera_id, body, user)


# live view ------------------------------------------------------------------------------------------


async def _mjpeg(gateway: CameraGateway, camera_id: str, reservation: object) -> AsyncIterator[bytes]:
    async with gateway.viewer(camera_id, reservation) as feed:
        seq = 0
        while not feed.closed:
            frame = await feed.next_frame(seq, None)  # woken by every frame, and when the feed closes
            if frame is None:
                continue
            seq = frame.seq
            yield frame.part


@router.get("/api/v1/cameras/{camera_id}/live.mjpeg", responses=_CAMERA_ERRORS, response_class=StreamingResponse)
async def live(camera_id: str, request: Request, cameras: CamerasDep, user: WatcherDep) -> StreamingResponse:
    """The camera live as MJPEG (``multipart/x-mixed-replace``); every viewer shares one reader."""
    with _errors():
        await cameras.access(camera_id, user=user, roles=("security",))
    try:
        reservation = cameras.gateway.reserve()
    except GatewayFull:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "too many live views are open; try again later",
                            headers={"Retry-After": "10"}) from None
    await _audit(request, user, "camera.view", camera_id, {})
    return StreamingResponse(_mjpeg(cameras.gateway, camera_id, reservation),
                             media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/api/v1/cameras/{camera_id}/snapshot.jpg", responses=_CAMERA_ERRORS, response_class=Response)
async def snapshot(camera_id: str, cameras: CamerasDep, user: WatcherDep) -> Response:
    """The newest live frame, or the camera's ONVIF snapshot when nobody watches it."""
    with _errors():
        jpeg = await cameras.snapshot(camera_id, user)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


# PTZ ------------------------------------------------------------------------------------------------


@router.post("/api/v1/cameras/{camera_id}/ptz/move", responses=_CAMERA_ERRORS, status_code=status.HTTP_204_NO_CONTENT)
async def ptz_move(camera_id: str, body: PtzMove, request: Request, cameras: CamerasDep,
                   user: SecurityDep) -> Response:
    """Starts a continuous pan/tilt/zoom move (until stop, or ``timeout_s``)."""
    with _errors():
        access = await cameras.ptz_access(camera_id, user)
        assert access.profile_token is not None
        async with access.ptz_control() as ptz:
            await ptz.continuous_move(access.profile_token, body.pan, body.tilt, body.zoom, body.timeout_s)
    await _audit(request, user, "camera.move", camera_id, {"pan": body.pan, "tilt": body.tilt, "zoom": body.zoom})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/v1/cameras/{camera_id}/ptz/stop", responses=_CAMERA_ERRORS, status_code=status.HTTP_204_NO_CONTENT)
async def ptz_stop(camera_id: str, cameras: CamerasDep, user: SecurityDep) -> Response:
    """Stops any PTZ move."""
    with _errors():
        access = await cameras.ptz_access(camera_id, user)
        assert access.profile_token is not None
        async with access.ptz_control() as ptz:
            await ptz.stop(access.profile_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/v1/cameras/{camera_id}/ptz/presets", responses=_CAMERA_ERRORS)
async def ptz_presets(camera_id: str, cameras: CamerasDep, user: SecurityDep) -> list[PresetPublic]:
    """The camera's stored positions."""
    with _errors():
        return await operations.ptz_presets(cameras, camera_id, user)


@router.post("/api/v1/cameras/{camera_id}/ptz/presets", responses=_CAMERA_ERRORS, status_code=status.HTTP_201_CREATED)
async def ptz_set_preset(camera_id: str, body: PresetCreate, cameras: CamerasDep,
                         user: SecurityDep) -> PresetPublic:
    """Stores the current position under a name."""
    with _errors():
        return await operations.ptz_set_preset(cameras, camera_id, body.name, user)


@router.post("/api/v1/cameras/{camera_id}/ptz/presets/{preset_token}/goto", responses=_CAMERA_ERRORS,
             status_code=status.HTTP_204_NO_CONTENT)
async def ptz_goto(camera_id: str, preset_token: str, cameras: CamerasDep, user: SecurityDep) -> Response:
    """Moves to a stored position."""
    with _errors():
        await operations.ptz_goto(cameras, camera_id, preset_token, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# events ---------------------------------------------------------------------------------------------


@router.get("/api/v1/camera-events")
def list_events(session: SessionDep, user: SecurityDep, camera_id: str | None = None,
                type: str | None = None, zone: str | None = None,
                since_ms: Annotated[int | None, Query(ge=0, le=2**53 - 1, description="ms since 1970 (UTC)")] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                ) -> list[CameraEventMessage]:
    """Motion, fault and recovery events of the caller's wards' cameras, newest first."""
    return operations.camera_events(session, camera_id, type, zone, since_ms, limit,
                                    wards_of(session, user, ("security",)))


async def _sse(hub: EventHub, wards: frozenset[str]) -> AsyncIterator[bytes]:
    queue = hub.subscribe(wards)
    try:
        yield b": connected\n\n"
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            yield f"id: {message.id}\nevent: {message.type}\ndata: {message.model_dump_json()}\n\n".encode()
    finally:
        hub.unsubscribe(queue)


@router.get("/api/v1/camera-events/stream", response_class=StreamingResponse)
async def event_stream(request: Request, cameras: CamerasDep, _user: WatcherDep) -> StreamingResponse:
    """Camera events of the caller's wards as they happen (Server-Sent Events; ``event`` is the type, ``data``
    the event)."""
    return StreamingResponse(_sse(cameras.hub, request.state.watch_wards), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/api/v1/camera-events/{event_id}/snapshot.jpg", responses=_CAMERA_ERRORS, response_class=Response)
async def event_snapshot(event_id: str, session: SessionDep, cameras: CamerasDep, user: SecurityDep) -> Response:
    """The frame stored with a motion event of the caller's wards (404 once retention removed it)."""
    event = session.get(CameraEvent, event_id)
    if event is None or event.snapshot is None or event.ward_id not in wards_of(session, user, ("security",)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no snapshot for event {event_id!r}")
    try:
        data = await asyncio.to_thread(cameras.snapshots.path(event.snapshot).read_bytes)
    except (OSError, ValueError):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the snapshot of event {event_id!r} is gone") from None
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
