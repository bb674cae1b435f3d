"""The controller's camera service: the registry, the gateway, motion events, health and discovery.

Blocking work (database, OpenCV) runs in threads; the camera's password is decrypted only into a
:class:`CameraAccess` that lives in memory for one operation and is never logged or returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets as pysecrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller import audit
from controller.cameras.events import CameraEventMessage, EventHub, event_message
from controller.cameras.gateway import CameraGateway, GatewayConfig, StreamSpec, probe_stream
from controller.cameras.motion import MotionHit, MotionSettings
from controller.cameras.onvif import CameraError, MediaProfile, PtzControl, describe, fetch_snapshot, redact_uri
from controller.cameras.schemas import (
    CameraFromDiscovery,
    CameraPublic,
    CameraRegister,
    CameraUpdate,
    ProfilePublic,
    stream_uri_problem,
)
from controller.cameras.secrets import SecretBox
from controller.cameras.snapshots import Retention, SnapshotStore
from controller.db import Database
from controller.messaging.events import CameraEventRaised, EventBus
from controller.messaging.outbox import BrokerUnavailable, Outbox
from controller.models import Camera, CameraDiscovery, CameraEvent, Device, User, utcnow
from controller.settings import Settings
from devices.protocol import CameraDiscover, now_ms

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: A ``camera.discover`` command is void after this long (the agent answers within seconds).
DISCOVER_TTL_MS = 60_000
#: How long a snapshot taken through the gateway waits for the first frame.
SNAPSHOT_FRAME_WAIT_S = 10.0
RTSP_DEFAULT_PORT = 554
#: Health checks run side by side, this many at a time (a dead camera costs its 5 s timeout).
HEALTH_CHECKS_AT_ONCE = 16


class CameraNotFound(LookupError):
    """No camera (or discovery, or agent) with that id."""


class CameraConflict(Exception):
    """The request clashes with what exists (an id taken, a camera without PTZ asked to move)."""


class RegistrationError(Exception):
    """A camera could not be used as given; ``reason`` is a short code, the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @classmethod
    def from_camera(cls, exc: CameraError) -> RegistrationError:
        """The same failure as the ONVIF client reported it (already free of credentials)."""
        return cls(exc.reason, exc.message)


class LinkDown(Exception):
    """The broker is unreachable, so a command cannot be sent now."""


def with_credentials(uri: str, username: str, password: str) -> str:
    """``uri`` with URL-quoted user-info (what OpenCV needs); never log the result."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if username:
        netloc = f"{urllib.parse.quote(username, safe='')}:{urllib.parse.quote(password, safe='')}@{netloc}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class CameraAccess:
    """What it takes to reach one camera, password decrypted (in memory only, for one operation)."""

    id: str
    agent_id: str | None
    zone: str | None
    host: str
    port: int
    username: str
    password: str
    onvif: bool
    stream_uri: str
    snapshot_uri: str | None
    profile_token: str | None
    ptz: bool
    motion: MotionSettings

    def stream_url(self) -> str:
        """The stream address with credentials, for OpenCV only."""
        return with_credentials(self.stream_uri, self.username, self.password)

    def probe_address(self) -> tuple[str, int]:
        """Where a health check knocks: the ONVIF port, or the RTSP port of a stream-only camera."""
        if self.onvif:
            return self.host, self.port
        parts = urllib.parse.urlsplit(self.stream_uri)
        return parts.hostname or self.host, parts.port or RTSP_DEFAULT_PORT

    def ptz_control(self) -> PtzControl:
        """An ONVIF PTZ session for this camera."""
        return PtzControl(self.host, self.port, self.username, self.password)


def camera_public(camera: Camera) -> CameraPublic:
    """The public view of a camera (never its password)."""
    return CameraPublic(
        id=camera.id, name=camera.name, agent_id=camera.agent_id, zone=camera.zone, host=camera.host,
        port=camera.port, username=camera.username, has_password=bool(camera.password_enc), onvif=camera.onvif,
        manufacturer=camera.manufacturer, model=camera.model, firmware=camera.firmware, serial=camera.serial,
        hardware_id=camera.hardware_id, profiles=[ProfilePublic.model_validate(p) for p in camera.profiles],
        profile_token=camera.profile_token, stream_uri=camera.stream_uri,
        has_snapshot_uri=camera.snapshot_uri is not None, ptz=camera.ptz,
        motion=MotionSettings.model_validate(camera.motion or {}), status=camera.status, fault=camera.fault,
        status_changed_at=camera.status_changed_at, last_ok_at=camera.last_ok_at,
        discovery_endpoint=camera.discovery_endpoint, created_at=camera.created_at, updated_at=camera.updated_at)


def _profile_dict(p: MediaProfile) -> dict[str, Any]:
    return {"token": p.token, "name": p.name, "encoding": p.encoding, "width": p.width, "height": p.height,
            "fps": p.fps, "rtsp_uri": p.rtsp_uri, "snapshot_uri": p.snapshot_uri, "ptz": p.ptz}


class CameraService:
    """Owns the gateway, the event hub, the snapshot store and the secret box."""

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
        self.gateway = CameraGateway(
            self._stream_spec,
            GatewayConfig(grace_s=settings.camera_viewer_grace_s, jpeg_quality=settings.camera_jpeg_quality,
                          backoff_max_s=settings.camera_reconnect_max_s,
                          fault_after_s=settings.camera_fault_after_s, max_viewers=settings.camera_max_viewers),
            self._on_health, self._on_motion)
        self._tasks: set[asyncio.Task[Any]] = set()

    # lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts motion detection on the cameras that have it on, and the health checks."""
        for access in await asyncio.to_thread(self._motion_cameras):
            await self.gateway.pin(access.id, StreamSpec(access.stream_url(), access.motion))
        self._spawn(self._health_loop(), "camera-health")

    async def stop(self) -> None:
        """Stops the readers and the background tasks."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.gateway.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _db(self, fn: Callable[[Session], _T]) -> _T:
        def run() -> _T:
            with self.db.session() as session:
                return fn(session)
        return await asyncio.to_thread(run)

    # access ------------------------------------------------------------------------------------------

    def _access(self, camera: Camera, *, tolerate_lost_secret: bool = False) -> CameraAccess:
        try:
            password = self.secrets.decrypt(camera.password_enc)
        except ValueError:
            # The key file was replaced or lost: this camera needs its password again (PATCH), nothing else breaks.
            if not tolerate_lost_secret:
                raise RegistrationError("secret_lost", f"the stored password of camera {camera.id} cannot be "
                                        "decrypted with this controller's camera-secrets.key; give it again "
                                        "(PATCH password)") from None
            password = ""
        return CameraAccess(
            id=camera.id, agent_id=camera.agent_id, zone=camera.zone, host=camera.host, port=camera.port,
            username=camera.username, password=password, onvif=camera.onvif,
            stream_uri=camera.stream_uri, snapshot_uri=camera.snapshot_uri, profile_token=camera.profile_token,
            ptz=camera.ptz, motion=MotionSettings.model_validate(camera.motion or {}))

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

    async def _describe(self, host: str, port: int, username: str, password: str,
                        profile_token: str | None) -> dict[str, Any]:
        """Reads the camera over ONVIF and picks the profile; the row fields it yields."""
        try:
            desc = await describe(host, port, username, password)
        except CameraError as exc:
            raise RegistrationError.from_camera(exc) from None
        if not desc.profiles:
            raise RegistrationError("no_h264", "the camera has no H.264 media profile")
        chosen = desc.profiles[0]
        if profile_token is not None:
            found = [p for p in desc.profiles if p.token == profile_token]
            if not found:
                tokens = ", ".join(p.token for p in desc.profiles)
                raise RegistrationError("no_profile", f"the camera has no profile {profile_token!r} (it has {tokens})")
            chosen = found[0]
        problem = stream_uri_problem(chosen.rtsp_uri)
        if problem:
            raise RegistrationError("bad_uri", f"profile {chosen.token!r}: {problem}")
        return {"manufacturer": desc.info.manufacturer, "model": desc.info.model, "firmware": desc.info.firmware,
                "serial": desc.info.serial, "hardware_id": desc.info.hardware_id,
                "profiles": [_profile_dict(p) for p in desc.profiles], "profile_token": chosen.token,
                "stream_uri": redact_uri(chosen.rtsp_uri), "snapshot_uri": chosen.snapshot_uri,
                "ptz": desc.ptz and chosen.ptz}

    async def _probe_rtsp(self, stream_uri: str, username: str, password: str) -> dict[str, Any]:
        """Checks an RTSP-only camera answers with video; the row fields it yields."""
        parts = urllib.parse.urlsplit(stream_uri)
        host, port = parts.hostname or "", parts.port or RTSP_DEFAULT_PORT
        if not await _tcp_answers(host, port, 5.0):
            raise RegistrationError("unreachable", f"nothing answers at {host}:{port}")
        size = await asyncio.to_thread(probe_stream, with_credentials(stream_uri, username, password), 8.0)
        if size is None:
            raise RegistrationError("no_video", f"{host}:{port} answers but the stream gives no video "
                                                "(wrong path or wrong credentials?)")
        width, height = size
        profile = {"token": "rtsp", "name": "RTSP", "encoding": "H264", "width": width, "height": height,
                   "fps": None, "rtsp_uri": stream_uri, "snapshot_uri": None, "ptz": False}
        return {"profiles": [profile], "profile_token": "rtsp", "stream_uri": stream_uri, "snapshot_uri": None,
                "ptz": False}

    def _check_placement(self, session: Session, agent_id: str | None) -> None:
        if agent_id is not None and session.get(Device, agent_id) is None:
            raise CameraNotFound(f"no agent {agent_id!r}")

    async def register(self, body: CameraRegister, user: User) -> CameraPublic:
        """Registers a camera by address: ONVIF described, or RTSP-only checked for video."""
        await self._db(lambda s: self._precheck(s, body.id, body.agent_id))
        if body.onvif:
            fields = await self._describe(body.host, body.port, body.username, body.password, body.profile_token)
        else:
            assert body.stream_uri is not None
            fields = await self._probe_rtsp(body.stream_uri, body.username, body.password)
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
        fields = await self._describe(host, port, body.username, body.password, body.profile_token)
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
            audit.record(session, user, "camera.register", camera_id,
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
                fields = await self._describe(access.host, access.port, username, password, token)
            else:
                fields = await self._probe_rtsp(access.stream_uri, username, password)

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
            audit.record(session, user, "camera.update", camera_id, {"fields": sorted(given - {"password"})})
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
            audit.record(session, user, "camera.delete", camera_id)
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
            audit.record(session, user, "camera.motion", camera_id, camera.motion)
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

    # events ------------------------------------------------------------------------------------------

    def _on_motion(self, camera_id: str, hit: MotionHit) -> None:
        self._spawn(self._record_motion(camera_id, hit), f"camera-motion-{camera_id}")

    def _on_health(self, camera_id: str, ok: bool, reason: str | None) -> None:
        self._spawn(self._record_health(camera_id, ok, reason), f"camera-health-{camera_id}")

    async def _record_motion(self, camera_id: str, hit: MotionHit) -> None:
        def store(session: Session) -> CameraEventMessage | None:
            camera = session.get(Camera, camera_id)
            if camera is None:
                return None
            event_id = pysecrets.token_hex(8)
            path = self.snapshots.save(camera_id, event_id, hit.snapshot) if hit.snapshot else None
            row = CameraEvent(id=event_id, camera_id=camera_id, type="camera.motion", ts_ms=round(hit.ts * 1000),
                              agent_id=camera.agent_id, zone=camera.zone, score=hit.score, snapshot=path,
                              detail={"sensitivity": camera.motion.get("sensitivity"),
                                      "zones": [z.get("name", "") for z in camera.motion.get("zones", [])]})
            session.add(row)
            session.flush()
            self.snapshots.enforce(session, camera_id)
            return event_message(row)
        try:
            message = await self._db(store)
        except Exception:
            log.exception("camera %s: could not store a motion event", camera_id)
            return
        if message is not None:
            log.info("camera %s: motion (score %.3f)", camera_id, hit.score)
            await self._emit(message)

    async def _record_health(self, camera_id: str, ok: bool, reason: str | None) -> None:
        def apply(session: Session) -> CameraEventMessage | None:
            camera = session.get(Camera, camera_id)
            if camera is None:
                return None
            now = utcnow()
            previous = camera.status
            if ok:
                camera.last_ok_at = now
                if previous == "online":
                    return None
                camera.status, camera.fault, camera.status_changed_at = "online", None, now
                if previous != "fault":
                    return None
                kind, detail = "camera.recovered", {}
            else:
                if previous == "fault":
                    return None
                camera.status, camera.fault, camera.status_changed_at = "fault", (reason or "no answer")[:300], now
                kind, detail = "camera.fault", {"reason": camera.fault}
            row = CameraEvent(id=pysecrets.token_hex(8), camera_id=camera_id, type=kind, ts_ms=now_ms(),
                              agent_id=camera.agent_id, zone=camera.zone, detail=detail)
            session.add(row)
            session.flush()
            return event_message(row)
        try:
            message = await self._db(apply)
        except Exception:
            log.exception("camera %s: could not record its health", camera_id)
            return
        if message is not None:
            log.warning("camera %s (agent %s, zone %s): %s %s", camera_id, message.agent_id, message.zone,
                        message.type, message.detail.get("reason", ""))
            await self._emit(message)

    async def _emit(self, message: CameraEventMessage) -> None:
        self.hub.publish(message)
        self.events.publish(CameraEventRaised(message.camera_id, message.type))
        try:
            await self.outbox.send_now(message)  # a live copy for listeners: the event is in the database
        except BrokerUnavailable:
            log.info("camera event %s not published (broker unreachable); it is in the database", message.id)

    async def _check_health(self, access: CameraAccess, limit: asyncio.Semaphore) -> None:
        status = self.gateway.status(access.id)
        if status is not None and status.running:
            return  # its reader reports its health
        host, port = access.probe_address()
        async with limit:
            ok = await _tcp_answers(host, port, 5.0)
        await self._record_health(access.id, ok, None if ok else f"no answer at {host}:{port}")

    async def _health_loop(self) -> None:
        """Knocks on cameras nobody watches; a reader watches its own camera's health."""
        interval = self.settings.camera_health_interval_s
        while True:
            started = time.monotonic()
            try:
                cameras = await self._db(lambda s: [self._access(c, tolerate_lost_secret=True)
                                                     for c in s.scalars(select(Camera))])
                limit = asyncio.Semaphore(HEALTH_CHECKS_AT_ONCE)
                await asyncio.gather(*(self._check_health(a, limit) for a in cameras))
                await self._db(lambda s: self.snapshots.prune_events(s, self.settings.camera_event_max_days))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("camera health check failed; carrying on")
            await asyncio.sleep(max(1.0, interval - (time.monotonic() - started)))


async def _tcp_answers(host: str, port: int, timeout_s: float) -> bool:
    """True if something accepts a TCP connection at ``host:port`` within the timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port, family=socket.AF_UNSPEC)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
