"""Watching cameras: motion hits and health changes become camera events, and cameras nobody watches are
knocked on now and then.

A camera with a running reader (someone watches it, or its motion detector runs) reports its own health
through the gateway; the others get a TCP knock on their ONVIF (or RTSP) port every
``camera_health_interval_s``. Each event is stored (with its snapshot, for motion), told to the
console's live list and the domain-event bus, and published as a live copy for listeners.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as pysecrets
import time
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.cameras.access import CameraAccess, load_access, run_in_session, tcp_answers
from controller.cameras.events import CameraEventMessage, EventHub, event_message
from controller.cameras.gateway import CameraGateway
from controller.cameras.motion import MotionHit
from controller.cameras.secrets import SecretBox
from controller.cameras.snapshots import SnapshotStore
from controller.messaging.events import CameraEventRaised, EventBus
from controller.messaging.outbox import BrokerUnavailable, Outbox
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import Camera, CameraEvent, utcnow
from devices.protocol import now_ms

log = logging.getLogger(__name__)

#: Health checks run side by side, this many at a time (a dead camera costs its 5 s timeout).
HEALTH_CHECKS_AT_ONCE = 16


class CameraMonitor:
    """Records motion and health as camera events and runs the health checks; its tasks end with :meth:`stop`."""

    def __init__(self, settings: Settings, db: Database, outbox: Outbox, events: EventBus, hub: EventHub,
                 snapshots: SnapshotStore, secrets: SecretBox) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox
        self.events = events
        self.hub = hub
        self.snapshots = snapshots
        self.secrets = secrets
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, gateway: CameraGateway) -> None:
        """Starts the health checks (cameras with a running reader in ``gateway`` are left to it)."""
        self._spawn(self._health_loop(gateway), "camera-health")

    async def stop(self) -> None:
        """Cancels the health checks and any event being recorded, and waits for them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # the gateway's callbacks (on the loop) -------------------------------------------------------------

    def on_motion(self, camera_id: str, hit: MotionHit) -> None:
        """A camera's motion detector fired: recorded in a task of its own."""
        self._spawn(self._record_motion(camera_id, hit), f"camera-motion-{camera_id}")

    def on_health(self, camera_id: str, ok: bool, reason: str | None) -> None:
        """A reader says its camera came back or stopped giving frames: recorded in a task of its own."""
        self._spawn(self._record_health(camera_id, ok, reason), f"camera-health-{camera_id}")

    async def _record_motion(self, camera_id: str, hit: MotionHit) -> None:
        def store(session: Session) -> CameraEventMessage | None:
            camera = session.get(Camera, camera_id)
            if camera is None:
                return None
            event_id = pysecrets.token_hex(8)
            path = self.snapshots.save(camera_id, event_id, hit.snapshot) if hit.snapshot else None
            row = CameraEvent(id=event_id, ward_id=camera.ward_id, camera_id=camera_id, type="camera.motion",
                              ts_ms=round(hit.ts * 1000),
                              agent_id=camera.agent_id, zone=camera.zone, score=hit.score, snapshot=path,
                              detail={"sensitivity": camera.motion.get("sensitivity"),
                                      "zones": [z.get("name", "") for z in camera.motion.get("zones", [])]})
            session.add(row)
            session.flush()
            self.snapshots.enforce(session, camera_id)
            return event_message(row)
        try:
            message = await run_in_session(self.db, store)
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
            row = CameraEvent(id=pysecrets.token_hex(8), ward_id=camera.ward_id, camera_id=camera_id, type=kind,
                              ts_ms=now_ms(),
                              agent_id=camera.agent_id, zone=camera.zone, detail=detail)
            session.add(row)
            session.flush()
            return event_message(row)
        try:
            message = await run_in_session(self.db, apply)
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

    async def _check_health(self, gateway: CameraGateway, access: CameraAccess, limit: asyncio.Semaphore) -> None:
        status = gateway.status(access.id)
        if status is not None and status.running:
            return  # its reader reports its health
        host, port = access.probe_address()
        async with limit:
            ok = await tcp_answers(host, port, 5.0)
        await self._record_health(access.id, ok, None if ok else f"no answer at {host}:{port}")

    async def _health_loop(self, gateway: CameraGateway) -> None:
        """Knocks on cameras nobody watches; a reader watches its own camera's health."""
        interval = self.settings.camera_health_interval_s
        while True:
            started = time.monotonic()
            try:
                cameras = await run_in_session(self.db, self._all_cameras)
                limit = asyncio.Semaphore(HEALTH_CHECKS_AT_ONCE)
                await asyncio.gather(*(self._check_health(gateway, a, limit) for a in cameras))
                await run_in_session(self.db, self._prune_events)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("camera health check failed; carrying on")
            await asyncio.sleep(max(1.0, interval - (time.monotonic() - started)))

    def _all_cameras(self, session: Session) -> list[CameraAccess]:
        return [load_access(c, self.secrets, tolerate_lost_secret=True) for c in session.scalars(select(Camera))]

    def _prune_events(self, session: Session) -> None:
        self.snapshots.prune_events(session, self.settings.camera_event_max_days)
