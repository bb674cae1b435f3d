"""What security staff do with a registered camera besides watching it: read its status and its events,
and use its stored PTZ positions (a move is recorded in the audit trail).

The camera API's routes and the console's camera pages both call these, so they answer alike. Refusals
are the camera service's own exceptions (:class:`~controller.cameras.service.CameraNotFound`,
:class:`~controller.cameras.service.CameraConflict` for a camera without PTZ, the camera's
:class:`~controller.cameras.onvif.CameraError`, :class:`~controller.cameras.service.LinkDown`…).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.cameras.events import CameraEventMessage, event_message
from controller.cameras.schemas import CameraStatusPublic, PresetPublic
from controller.cameras.service import CameraService
from controller.storage.engine import Database
from controller.storage.models import Camera, CameraEvent, User


def camera_events(session: Session, camera_id: str | None = None, type: str | None = None,
                  zone: str | None = None, since_ms: int | None = None, limit: int = 100,
                  wards: frozenset[str] | None = None) -> list[CameraEventMessage]:
    """Motion, fault and recovery events (of cameras of ``wards``; None: all), newest first."""
    query = select(CameraEvent).order_by(CameraEvent.ts_ms.desc(), CameraEvent.id)
    if wards is not None:
        query = query.where(CameraEvent.ward_id.in_(wards))
    if camera_id is not None:
        query = query.where(CameraEvent.camera_id == camera_id)
    if type is not None:
        query = query.where(CameraEvent.type == type)
    if zone is not None:
        query = query.where(CameraEvent.zone == zone)
    if since_ms is not None:
        query = query.where(CameraEvent.ts_ms >= since_ms)
    return [event_message(e) for e in session.scalars(query.limit(limit))]


def camera_status(session: Session, cameras: CameraService, camera_id: str,
                  user: User | None = None) -> CameraStatusPublic:
    """Health (online / fault) and, while someone watches, the reader's fps, resolution and frame age (for
    ``user``: a camera of their wards)."""
    camera = cameras.camera(session, camera_id, user)
    reader = cameras.gateway.status(camera_id)
    online = reader.online if reader is not None and reader.running else camera.status == "online"
    return CameraStatusPublic(id=camera.id, status=camera.status, fault=camera.fault,
                              status_changed_at=camera.status_changed_at, last_ok_at=camera.last_ok_at,
                              online=online, reader=reader)


async def record_camera_action(db: Database, user: User, action: str, camera_id: str,
                               detail: dict[str, object]) -> None:
    """Records a camera being watched or moved (under the camera's ward), in a short session of its own off
    the event loop."""
    def write() -> None:
        with db.session() as session:
            ward = session.scalar(select(Camera.ward_id).where(Camera.id == camera_id))
            audit_chain.record(session, user, action, camera_id, dict(detail), unit=ward)

    await asyncio.to_thread(write)


async def ptz_presets(cameras: CameraService, camera_id: str, user: User | None = None) -> list[PresetPublic]:
    """The camera's stored positions, read from the camera itself."""
    access = await cameras.ptz_access(camera_id, user)
    assert access.profile_token is not None
    async with access.ptz_control() as ptz:
        presets = await ptz.presets(access.profile_token)
    return [PresetPublic(token=p.token, name=p.name) for p in presets]


async def ptz_set_preset(cameras: CameraService, camera_id: str, name: str,
                         user: User | None = None) -> PresetPublic:
    """Stores where the camera points now under ``name``."""
    access = await cameras.ptz_access(camera_id, user)
    assert access.profile_token is not None
    async with access.ptz_control() as ptz:
        token = await ptz.set_preset(access.profile_token, name)
    return PresetPublic(token=token, name=name)


async def ptz_goto(cameras: CameraService, camera_id: str, preset_token: str, user: User) -> None:
    """Moves the camera (of the user's wards) to a stored position, and records who moved it."""
    access = await cameras.ptz_access(camera_id, user)
    assert access.profile_token is not None
    async with access.ptz_control() as ptz:
        await ptz.goto_preset(access.profile_token, preset_token)
    await record_camera_action(cameras.db, user, "camera.move", camera_id, {"preset": preset_token})
