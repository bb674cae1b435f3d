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
from controller.accounts.reach import NotInReach, check_ward, ward_for_new, wards_of
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

#: Who registers, changes and removes cameras; who watches them, moves them and sets motion detection.
TECHNICIAN_ROLES = ("technician",)
SECURITY_ROLES = ("security",)

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

    @staticmethod
    def camera(session: Session, camera_id: str, user: User | None = None,
               roles: tuple[str, ...] | None = None) -> Camera:
        """The camera row; with ``user``, only one of their wards (another ward's is as unknown as none:
        CameraNotFound, same words) and, with ``roles``, OutsideRole where they lack those roles."""
        camera = session.get(Camera, camera_id)
        if camera is None:
            raise CameraNotFound(f"no camera {camera_id!r}")
        if user is not None:
            try:
                check_ward(session, user, camera.ward_id, roles, f"no camera {camera_id!r}")
            except NotInReach:
                raise CameraNotFound(f"no camera {camera_id!r}") from None
        return camera

    async def access(self, camera_id: str, *, tolerate_lost_secret: bool = False, user: User | None = None,
                     roles: tuple[str, ...] | None = None) -> CameraAccess:
        """The camera's access details (for ``user``: a camera of their wards, checked as :meth:`camera`),
        or CameraNotFound (RegistrationError if its password is unreadable)."""
        def load(session: Session) -> CameraAccess:
            camera = self.camera(session, camera_id, user, roles)
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

    def _check_placement(self, session: Session, agent_id: str | None, ward_id: str) -> None:
        """A camera's agent must be of the camera's ward (another ward's agent is as unknown as none)."""
        if agent_id is not None and session.scalar(select(Device.ward_id).where(Device.id == agent_id)) != ward_id:
            raise CameraNotFound(f"no agent {agent_id!r}")

    async def register(self, body: CameraRegister, user: User) -> CameraPublic:
        """Registers a camera by address in the ward named (or the caller's only one): ONVIF described, or
        RTSP-only checked for video."""
        ward = await self._db(lambda s: self._precheck(s, body.id, body.agent_id, user, body.ward))
        if body.onvif:
            fields = await read_onvif_camera(body.host, body.port, body.username, body.password, body.profile_token)
        else:
            assert body.stream_uri is not None
            fields = await probe_rtsp_camera(body.stream_uri, body.username, body.password)
        return await self._insert(body.id, body.name, body.agent_id, body.zone, body.host, body.port,
                                  body.username, body.password, body.onvif, None, fields, user, ward,
                                  (body.lat, body.lon))

    async def register_discovered(self, discovery_id: int, body: CameraFromDiscovery, user: User) -> CameraPublic:
        """Registers a camera an agent found (in the finding agent's ward unless another is named); its address
        is the discovery's first ONVIF service address."""
        def load(session: Session) -> tuple[CameraDiscovery, str]:
            row = session.get(CameraDiscovery, discovery_id)
            if row is None or row.ward_id not in wards_of(session, user):
                raise CameraNotFound(f"no discovery {discovery_id}")
            ward = self._precheck(session, body.id, body.agent_id or row.agent_id, user, body.ward or row.ward_id)
            return row, ward
        found, ward = await self._db(load)
        xaddr = urllib.parse.urlsplit(found.xaddrs[0])
        host = xaddr.hostname or found.host
        port = xaddr.port or (443 if xaddr.scheme == "https" else 80)
        fields = await read_onvif_camera(host, port, body.username, body.password, body.profile_token)
        return await self._insert(body.id, body.name, body.agent_id or found.agent_id, body.zone, host, port,
                                  body.username, body.password, True, found.endpoint, fields, user, ward,
                                  (body.lat, body.lon))

    def _precheck(self, session: Session, camera_id: str, agent_id: str | None, user: User,
                  requested_ward: str | None) -> str:
        """The new camera's ward, once the caller may register there, the id is free and the agent is of it."""
        ward = ward_for_new(session, user, requested_ward, TECHNICIAN_ROLES)
        if session.get(Camera, camera_id) is not None:
            raise CameraConflict(f"camera {camera_id!r} already exists")
        self._check_placement(session, agent_id, ward)
        return ward

    async def _insert(self, camera_id: str, name: str, agent_id: str | None, zone: str | None, host: str,
                      port: int, username: str, password: str, is_onvif: bool, endpoint: str | None,
                      fields: dict[str, Any], user: User, ward: str,
                      location: tuple[float | None, float | None] = (None, None)) -> CameraPublic:
        def insert(session: Session) -> CameraPublic:
            self._precheck(session, camera_id, agent_id, user, ward)
            camera = Camera(id=camera_id, ward_id=ward, name=name, agent_id=agent_id, zone=zone, host=host, port=port,
                            username=username, password_enc=self.secrets.encrypt(password), onvif=is_onvif,
                            discovery_endpoint=endpoint, motion=MotionSettings().model_dump(), status="unknown",
                            lat=location[0], lon=location[1], **fields)
            session.add(camera)
            audit_chain.record(session, user, "camera.register", camera_id,
                               {"host": host, "port": port, "onvif": is_onvif, "agent_id": agent_id, "zone": zone},
                               unit=ward)
            session.flush()
            return camera_public(camera)
        public = await self._db(insert)
        log.info("camera %s registered (%s:%d, %s)", camera_id, host, port, "ONVIF" if is_onvif else "RTSP")
        return public

    async def update(self, camera_id: str, body: CameraUpdate, user: User) -> CameraPublic:
        """Changes placement or credentials; new credentials or profile are checked against the camera."""
        given = body.model_fields_set
        access = await self.access(camera_id, tolerate_lost_secret="password" in given, user=user,
                                   roles=TECHNICIAN_ROLES)
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
            camera = self.camera(session, camera_id, user, TECHNICIAN_ROLES)
            if "agent_id" in given:
                self._check_placement(session, body.agent_id, camera.ward_id)
                camera.agent_id = body.agent_id
            if "zone" in given:
                camera.zone = body.zone
            if "name" in given and body.name is not None:
                camera.name = body.name
            if "lat" in given:
                camera.lat, camera.lon = body.lat, body.lon
            camera.username = username
            camera.password_enc = self.secrets.encrypt(password)
            for key, value in fields.items():
                setattr(camera, key, value)
            audit_chain.record(session, user, "camera.update", camera_id, {"fields": sorted(given - {"password"})},
                               unit=camera.ward_id)
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
            camera = self.camera(session, camera_id, user, TECHNICIAN_ROLES)
            session.delete(camera)
            audit_chain.record(session, user, "camera.delete", camera_id, unit=camera.ward_id)
        await self._db(remove)
        await self.gateway.forget(camera_id)
        await asyncio.to_thread(self.snapshots.remove_camera, camera_id)

    async def set_motion(self, camera_id: str, settings: MotionSettings, user: User) -> CameraPublic:
        """Stores the motion settings and (re)starts or stops detection."""
        def apply(session: Session) -> CameraPublic:
            camera = self.camera(session, camera_id, user, SECURITY_ROLES)
            camera.motion = settings.model_dump(mode="json")
            audit_chain.record(session, user, "camera.motion", camera_id, camera.motion, unit=camera.ward_id)
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

    async def snapshot(self, camera_id: str, user: User | None = None) -> bytes:
        """The gateway's newest frame, else the camera's ONVIF snapshot, else one frame read for it (for
        ``user``: a camera of their wards where they watch cameras)."""
        if user is not None:
            await self._db(lambda s: self.camera(s, camera_id, user, SECURITY_ROLES))
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

    async def ptz_access(self, camera_id: str, user: User | None = None) -> CameraAccess:
        """The access of a PTZ camera (for ``user``: of their wards, where they are security staff;
        CameraConflict if it has no PTZ)."""
        access = await self.access(camera_id, user=user, roles=SECURITY_ROLES if user is not None else None)
        if not access.ptz or not access.profile_token:
            raise CameraConflict(f"camera {camera_id} has no PTZ")
        return access

    async def _require_agent(self, agent_id: str, user: User | None) -> None:
        def check(session: Session) -> None:
            ward = session.scalar(select(Device.ward_id).where(Device.id == agent_id))
            if ward is None:
                raise CameraNotFound(f"no agent {agent_id!r}")
            if user is not None:
                try:
                    check_ward(session, user, ward, TECHNICIAN_ROLES, f"no agent {agent_id!r}")
                except NotInReach:
                    raise CameraNotFound(f"no agent {agent_id!r}") from None
        await self._db(check)

    async def send_discover(self, agent_id: str, timeout_ms: int, user: User | None = None) -> str:
        """Sends a signed ``camera.discover`` to an agent (for ``user``: of their wards); returns the command id."""
        await self._require_agent(agent_id, user)
        # Said now, not written: asked from the console, it is answered now or reported as failed.
        try:
            sent = await self.outbox.send_now(CameraDiscover(timeout_ms=timeout_ms), agent_id, ttl_ms=DISCOVER_TTL_MS)
        except BrokerUnavailable:
            raise LinkDown("the MQTT broker is unreachable; try again shortly") from None
        assert sent.id is not None  # a command is signed, so it has an id
        log.info("asked agent %s to look for cameras (command %s)", agent_id, sent.id)
        return sent.id
