"""The controller's camera service: the registry, the gateway, snapshots, PTZ access and discovery requests.

The rooms around it: ``access`` (reaching a camera, its password decrypted only for one operation),
``registration`` (reading a camera before its row is written), ``monitoring`` (motion and health
events, the health checks), ``gateway`` (live view). Blocking work (database, OpenCV) runs in threads;
the camera's password is never logged or returned.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.cameras.access import CameraAccess, load_access, run_in_session, with_credentials
from controller.cameras.errors import CameraConflict, CameraNotFound, LinkDown, RegistrationError
from controller.cameras.events import EventHub
from controller.cameras.gateway import CameraGateway, GatewayConfig, StreamSpec
from controller.cameras.monitoring import CameraMonitor
from controller.cameras.motion import MotionSettings
from controller.cameras.onvif import CameraError, fetch_snapshot
from controller.cameras.registration import camera_public, probe_rtsp_camera, read_onvif_camera
from controller.cameras.schemas import CameraFromDiscovery, CameraPublic, CameraRegister, CameraUpdate
from controller.cameras.secrets import SecretBox
from controller.cameras.snapshots import Retention, SnapshotStore
from controller.messaging.events import EventBus
from controller.messaging.outbox import BrokerUnavailable, Outbox
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import Camera, CameraDiscovery, Device, User
from devices.protocol import CameraDiscover

__all__ = [
    "CameraAccess",
    "CameraConflict",
    "CameraNotFound",
    "CameraService",
    "LinkDown",
    "RegistrationError",
    "camera_public",
    "with_credentials",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: A ``camera.discover`` command is void after this long (the agent answers within seconds).
DISCOVER_TTL_MS = 60_000
#: How long a snapshot taken through the gateway waits for the first frame.
SNAPSHOT_FRAME_WAIT_S = 10.0


class CameraService:
    """Owns the gateway, the event hub, the snapshot store, the secret box and the monitor."""

    def __init__(self, settings: Settings, db: Database, outbox: Outbox, *, events: EventBus) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox
        self.secrets = SecretBox.load_or_create(settings.data_dir)
        self.snapshots = SnapshotStore(settings.data_dir / "camera-snapshots",
                                       Retention(settings.camera_snapshot_max_per_camera,
                                                 settings.camera_snapshot_max_days,
                                                 settings.camera_snapshot_max_bytes))
        self.hub = EventHub()
        #: Where every camera event is told as it is published (the console's change feed: motion, health).
        self.events = events
        self.monitor = CameraMonitor(settings, db, outbox, events, self.hub, self.snapshots, self.secrets)
        self.gateway = CameraGateway(
            self._stream_spec,
            GatewayConfig(grace_s=settings.camera_viewer_grace_s, jpeg_quality=settings.camera_jpeg_quality,
                          backoff_max_s=settings.camera_reconnect_max_s,
                          fault_after_s=settings.camera_fault_after_s, max_viewers=settings.camera_max_viewers),
            self.monitor.on_health, self.monitor.on_motion)

    # lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts motion detection on the cameras that have it on, and the health checks."""
        for access in await asyncio.to_thread(self._motion_cameras):
            await self.gateway.pin(access.id, StreamSpec(access.stream_url(), access.motion))
        self.monitor.start(self.gateway)

    async def stop(self) -> None:
        """Stops the health checks, the events being recorded, and the readers."""
        await self.monitor.stop()
        await self.gateway.close()

    async def _db(self, fn: Callable[[Session], _T]) -> _T:
        return await run_in_session(self.db, fn)

    # access ------------------------------------------------------------------------------------------

    def _access(self, camera: Camera, *, tolerate_lost_secret: bool = False) -> CameraAccess:
        return load_access(camera, self.secrets, tolerate_lost_secret=tolerate_lost_secret)

    async def access(self, camera_id: str, *, tolerate_lost_secret: bool = False) -> CameraAccess:
        """The camera's access details, or CameraNotFound (RegistrationError if its password is unreadable)."""
        def load(session: Session) -> CameraAccess:
            camera = session.get(Camera, camera_id)
            if camera is None:
                raise CameraNotFound(f"no camera {camera_id!r}")
            return self._access(camera, tolerate_lost_secret=tolerate_lost_secret)
        return await self._db(load)

    def _motion_cameras(self) -> list[CameraAccess]:
        found = []
        with self.db.session() as session:
            for camera in session.scalars(select(Camera).order_by(Camera.id)):
                if not (camera.motion or {}).get("enabled"):
                    continue
                try:
                    found.append(self._access(camera))
                except RegistrationError as exc:
                    log.error("camera %s: motion detection not started: %s", camera.id, exc.message)
        return found

    async def _stream_spec(self, camera_id: str) -> StreamSpec:
        access = await self.access(camera_id)
        return StreamSpec(access.stream_url(), access.motion if access.motion.enabled else None)

    # registration ------------------------------------------------------------------------------------

    def _check_placement(self, session: Session, agent_id: str | None) -> None:
        if agent_id is not None and session.get(Device, agent_id) is None:
            raise CameraNotFound(f"no agent {agent_id!r}")

    async def register(self, body: CameraRegister, user: User) -> CameraPublic:
        """Registers a camera by address: ONVIF described, or RTSP-only checked for video."""
        await self._db(lambda s: self._precheck(s, body.id, body.agent_id))
        if body.onvif:
            fields = await read_onvif_camera(body.host, body.port, body.username, body.password, body.profile_token)
        else:
            assert body.stream_uri is not None
            fields = await probe_rtsp_camera(body.stream_uri, body.username, body.password)
        return await self._insert(body.id, body.name, body.agent_id, body.zone, body.host, body.port,
                                  body.username, body.password, body.onvif, None, fields, user)

    async def register_discovered(self, discovery_id: int, body: CameraFromDiscovery, user: User) -> CameraPublic:
        """Registers a camera an agent found; its address is the discovery's first ONVIF service address."""
        def load(session: Session) -> CameraDiscovery:
            row = session.get(CameraDiscovery, discovery_id)
            if row is None:
                raise CameraNotFound(f"no discovery {discovery_id}")
            self._precheck(session, body.id, body.agent_id)
            return row
        found = await self._db(load)
        xaddr = urllib.parse.urlsplit(found.xaddrs[0])
        host = xaddr.hostname or found.host
        port = xaddr.port or (443 if xaddr.scheme == "https" else 80)
        fields = await read_onvif_camera(host, port, body.username, body.password, body.profile_token)
        return await self._insert(body.id, body.name, body.agent_id or found.agent_id, body.zone, host, port,
                                  body.username, body.password, True, found.endpoint, fields, user)

    def _precheck(self, session: Session, camera_id: str, agent_id: str | None) -> None:
        if session.get(Camera, camera_id) is not None:
            raise CameraConflict(f"camera {camera_id!r} already exists")
        self._check_placement(session, agent_id)

    async def _insert(self, camera_id: str, name: str, agent_id: str | None, zone: str | None, host: str,
                      port: int, username: str, password: str, is_onvif: bool, endpoint: str | None,
                      fields: dict[str, Any], user: User) -> CameraPublic:
        def insert(session: Session) -> CameraPublic:
            self._precheck(session, camera_id, agent_id)
            camera = Camera(id=camera_id, name=name, agent_id=agent_id, zone=zone, host=host, port=port,
                            username=username, password_enc=self.secrets.encrypt(password), onvif=is_onvif,
                            discovery_endpoint=endpoint, motion=MotionSettings().model_dump(), status="unknown",
                            **fields)
            session.add(camera)
            audit_chain.record(session, user, "camera.register", camera_id,
                               {"host": host, "port": port, "onvif": is_onvif, "agent_id": agent_id, "zone": zone})
            session.flush()
            return camera_public(camera)
        public = await self._db(insert)
        log.info("camera %s registered (%s:%d, %s)", camera_id, host, port, "ONVIF" if is_onvif else "RTSP")
        return public

    async def update(self, camera_id: str, body: CameraUpdate, user: User) -> CameraPublic:
        """Changes placement or credentials; new credentials or profile are checked against the camera."""
        given = body.model_fields_set
        access = await self.access(camera_id, tolerate_lost_secret="password" in given)
        fields: dict[str, Any] = {}
        username = body.username if "username" in given and body.username is not None else access.username
        password = body.password if "password" in given and body.password is not None else access.password
        reconnect = {"username", "password", "profile_token"} & given
        if reconnect:
            if access.onvif:
                token = body.profile_token if "profile_token" in given else access.profile_token
                fields = await read_onvif_camera(access.host, access.port, username, password, token)
            else:
                fields = await probe_rtsp_camera(access.stream_uri, username, password)

        def apply(session: Session) -> CameraPublic:
            camera = session.get(Camera, camera_id)
            if camera is None:
                raise CameraNotFound(f"no camera {camera_id!r}")
            if "agent_id" in given:
                self._check_placement(session, body.agent_id)
                camera.agent_id = body.agent_id
            if "zone" in given:
                camera.zone = body.zone
            if "name" in given and body.name is not None:
                camera.name = body.name
            camera.username = username
            camera.password_enc = self.secrets.encrypt(password)
            for key, value in fields.items():
                setattr(camera, key, value)
            audit_chain.record(session, user, "camera.update", camera_id, {"fields": sorted(given - {"password"})})
            session.flush()
            return camera_public(camera)
        public = await self._db(apply)
        if reconnect:
            if public.motion.enabled:
                await self.gateway.pin(camera_id, await self._stream_spec(camera_id))  # (re)starts detection
            else:
                await self.gateway.restart(camera_id)
        return public

    async def delete(self, camera_id: str, user: User) -> None:
        """Removes a camera, its events and snapshots; its viewers' streams end."""
        def remove(session: Session) -> None:
            camera = session.get(Camera, camera_id)
            if camera is None:
                raise CameraNotFound(f"no camera {camera_id!r}")
            session.delete(camera)
            audit_chain.record(session, user, "camera.delete", camera_id)
        await self._db(remove)
        await self.gateway.forget(camera_id)
        await asyncio.to_thread(self.snapshots.remove_camera, camera_id)

    async def set_motion(self, camera_id: str, settings: MotionSettings, user: User) -> CameraPublic:
        """Stores the motion settings and (re)starts or stops detection."""
        def apply(session: Session) -> CameraPublic:
            camera = session.get(Camera, camera_id)
            if camera is None:
                raise CameraNotFound(f"no camera {camera_id!r}")
            camera.motion = settings.model_dump(mode="json")
            audit_chain.record(session, user, "camera.motion", camera_id, camera.motion)
            session.flush()
            return camera_public(camera)
        public = await self._db(apply)
        if settings.enabled:
            await self.gateway.pin(camera_id, await self._stream_spec(camera_id))
        else:
            await self.gateway.unpin(camera_id)
            await self.gateway.restart(camera_id)  # viewers keep watching, without the detector
        return public

    # snapshots, PTZ, discovery -----------------------------------------------------------------------

    async def snapshot(self, camera_id: str) -> bytes:
        """The gateway's newest frame, else the camera's ONVIF snapshot, else one frame read for it."""
        frame = self.gateway.latest(camera_id)
        if frame is not None:
            return frame.jpeg
        access = await self.access(camera_id)
        if access.snapshot_uri:
            try:
                return await fetch_snapshot(access.snapshot_uri, access.username, access.password)
            except CameraError as exc:
                log.info("camera %s: ONVIF snapshot failed (%s); reading a frame instead", camera_id, exc.reason)
        async with self.gateway.viewer(camera_id) as feed:
            got = await feed.next_frame(0, SNAPSHOT_FRAME_WAIT_S)
        if got is None:
            raise RegistrationError("unreachable", f"no frame from camera {camera_id} within "
                                                   f"{SNAPSHOT_FRAME_WAIT_S:.0f} s")
        return got.jpeg

    async def ptz_access(self, camera_id: str) -> CameraAccess:
        """The access of a PTZ camera (CameraConflict if it has no PTZ)."""
        access = await self.access(camera_id)
        if not access.ptz or not access.profile_token:
            raise CameraConflict(f"camera {camera_id} has no PTZ")
        return access

    async def _require_agent(self, agent_id: str) -> None:
        if not await self._db(lambda s: s.get(Device, agent_id) is not None):
            raise CameraNotFound(f"no agent {agent_id!r}")

    async def send_discover(self, agent_id: str, timeout_ms: int) -> str:
        """Sends a signed ``camera.discover`` to an agent; returns the command id."""
        await self._require_agent(agent_id)
        # Said now, not written: asked from the console, it is answered now or reported as failed.
        try:
            sent = await self.outbox.send_now(CameraDiscover(timeout_ms=timeout_ms), agent_id, ttl_ms=DISCOVER_TTL_MS)
        except BrokerUnavailable:
            raise LinkDown("the MQTT broker is unreachable; try again shortly") from None
        assert sent.id is not None  # a command is signed, so it has an id
        log.info("asked agent %s to look for cameras (command %s)", agent_id, sent.id)
        return sent.id
