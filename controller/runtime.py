"""The controller's long-lived parts and their tasks, started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from controller.accounts.auth import Bootstrap, LoginThrottle, ensure_first_admin
from controller.broadcasts.announcements import AnnouncementService
from controller.broadcasts.live.hub import LiveHub
from controller.broadcasts.live.sessions import LiveSessions
from controller.broadcasts.media_store import MediaStore
from controller.broadcasts.speech import SpeechService
from controller.cameras.service import CameraService
from controller.fleet.device_operations import DeviceOperations
from controller.fleet.enrolment import AttemptLimiter, BrokerAccess
from controller.fleet.groups import GroupsKeeper
from controller.fleet.inbox import FairInbox, InboxLimits, record_drops
from controller.fleet.play_guard import give_plays
from controller.fleet.provisioning import ProvisioningService
from controller.fleet.recorder import FleetRecorder, HandleResult
from controller.fleet.remote_ops import OpsService
from controller.messaging.events import (
    AgentsReported,
    DeviceChanged,
    EventBus,
    ScheduleChanged,
    SignChanged,
    StandbyChanged,
    ZoneChanged,
)
from controller.messaging.keys import load_or_create_signing_key
from controller.messaging.outbox import BrokerUnavailable, Outbox, waiting_commands
from controller.schedule.agent_windows import WindowPublisher
from controller.schedule.items import ScheduleService
from controller.schedule.timed_jobs import bind, start_scheduler
from controller.schedule.zones import ZoneService
from controller.settings import Settings
from controller.signs import SignService
from controller.signs.actions import SignActions
from controller.storage import migrate
from controller.storage.change_feed import ChangeFeed
from controller.storage.engine import Database
from devices.mqtt_link import LinkSettings, MqttLink, Will
from devices.protocol import (
    AgentStatus,
    EventsAck,
    ProtocolError,
    Signer,
    StatusPayload,
    Topics,
    now_ms,
    parse_topic,
    public_key_to_text,
    status_payload,
)

log = logging.getLogger(__name__)

_BATCH = 200
#: How often per-agent inbox drops are written to the devices table (and idle lanes forgotten).
_DROPS_EVERY_S = 5.0
_ACK_TTL_MS = 120_000


class Controller:
    """Owns the database, signing key, media store, MQTT link and background workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.resolved_database_url())
        migrate.upgrade(self.db.engine)
        self.signer = Signer(load_or_create_signing_key(settings.data_dir))
        self.public_key_text = public_key_to_text(self.signer.public_key)
        self.media = MediaStore(settings.data_dir / "media")
        with self.db.session() as session:
            self.bootstrap: Bootstrap | None = ensure_first_admin(session, settings.admin_username,
                                                                  settings.data_dir)
        self.login_throttle = LoginThrottle()
        #: What happened, told to whoever reacts to it (controller/messaging/events.py); wired in _subscribe.
        self.events = EventBus()
        #: Change counters the console's event stream watches (controller/storage/change_feed.py).
        self.changes = ChangeFeed()
        self.enrol_limiter = AttemptLimiter()
        # The broker's password/ACL files follow the registry (docs/security.md); rewritten now so a
        # changed controller password or a registry restored from backup takes effect before we connect.
        self.broker = BrokerAccess(settings, self.db)
        self.broker.sync()
        self.fleet = FleetRecorder(self.db)
        self.link = MqttLink(
            LinkSettings(host=settings.mqtt_host, port=settings.mqtt_port, client_id="loaphuong-controller",
                         username=settings.mqtt_username, password=settings.mqtt_password,
                         tls_ca_file=settings.mqtt_tls_ca_file, subscriptions=Topics.CONTROLLER_SUBSCRIPTIONS),
            self._on_message,
            will=Will(Topics.CONTROLLER_STATUS, status_payload(AgentStatus.OFFLINE, with_ts=False)),
            on_connect=self._on_connect,
        )
        #: The one way out to the broker: signs, records and publishes (controller/messaging/outbox.py).
        self.outbox = Outbox(self.db, self.signer, self.link, poll_s=settings.outbox_poll_s, hold=settings.outbox_hold)
        self.speech = SpeechService(settings, self.db, self.media)
        self.announcements = AnnouncementService(settings, self.db, self.speech, self.outbox, events=self.events)
        self.windows = WindowPublisher(settings, self.db, self.outbox)
        self.schedule = ScheduleService(settings, self.speech, self.events)
        self.signs = SignService(settings, self.db, self.media, self.outbox, events=self.events)
        self.cameras = CameraService(settings, self.db, self.outbox, events=self.events)
        self.live = LiveHub(settings, self.db, self.outbox)
        #: Remote operations (``POST /api/v1/devices/{id}/ops/{op}``), answered through the fleet's replies.
        self.ops = OpsService(self.outbox)
        self.fleet.on_reply = self.ops.resolve_threadsafe
        self.fleet.on_info = GroupsKeeper(self.outbox, self.events, settings.command_ttl_ms).on_info
        self.ops.on_play_given = self._tone_given
        self._scheduler: AsyncIOScheduler | None = None
        #: Per-agent lanes served round-robin, each with its own rate and bound (controller/fleet/inbox.py).
        self.inbox = FairInbox(InboxLimits(rate_per_s=settings.inbox_agent_rate, burst=settings.inbox_agent_burst,
                                           agent_messages=settings.inbox_agent_queue,
                                           total_messages=settings.inbox_total_queue))
        self._tasks: list[asyncio.Task[None]] = []
        # What the API's routes and the console's pages share (handed out by controller/api/deps.py).
        self.provisioning = ProvisioningService(settings, self.events, self.outbox, self.enrol_limiter,
                                                self.public_key_text)
        self.device_operations = DeviceOperations(self.ops)
        self.live_sessions = LiveSessions(self.live, self.db, self.events)
        self.zones = ZoneService(self.events)
        self.sign_actions = SignActions(self.signs)
        self._subscribe()

    def _subscribe(self) -> None:
        """Who reacts to what: the one place the controller's side effects are wired."""
        bus = self.events
        # Rewriting the broker's files reads the registry and writes files: never on the event loop.
        bus.subscribe(DeviceChanged, self._sync_broker, blocking=True)
        bus.subscribe(DeviceChanged, self._device_reach_changed)
        bus.subscribe(ZoneChanged, lambda e: self.windows.request(e.agent_ids))
        bus.subscribe(ScheduleChanged, lambda e: self.windows.request(e.agent_ids))
        bus.subscribe(StandbyChanged, lambda _e: self.windows.request(None))  # every window lists them
        bus.subscribe(SignChanged, lambda e: self.signs.request(e.agent_ids))
        self.changes.follow(bus)

    def _sync_broker(self, event: DeviceChanged) -> None:
        if event.access:
            self.broker.sync()

    def _device_reach_changed(self, event: DeviceChanged) -> None:
        # A device's zones or enabled flag decide both its schedule window and which sign items reach it.
        if event.reach:
            self.windows.request(event.agent_ids)
            self.signs.request(event.agent_ids)

    def _tone_given(self, agent_id: str, command_id: str) -> None:
        # A tone's play id is its command id: recorded before it goes out, so its proof of play is believed.
        with self.db.session() as session:
            give_plays(session, agent_id, [(command_id, now_ms())], "tone")

    async def start(self) -> None:
        """Starts the link and the workers; picks up work a previous run left unfinished."""
        # Commands a previous run wrote and did not publish are in the outbox: its publisher sends them.
        queued = await waiting_commands(self.db)
        rendering = await self.announcements.requeue_unfinished()
        if queued or rendering:
            log.info("resuming %d queued deliveries and %d announcements to render", queued, rendering)
        for name, coro in (("mqtt", self.link.run()), ("outbox", self.outbox.run()),
                           ("announcements", self.announcements.run()), ("inbox", self._inbox_worker()),
                           ("windows", self.windows.run()), ("signs", self.signs.run())):
            self._tasks.append(asyncio.create_task(coro, name=f"controller-{name}"))
        bind(self.db, self.speech, self.windows)
        self._scheduler = start_scheduler(self.settings, self.db)
        await self.cameras.start()
        await self.live.start()
        # Time has passed while we were down: every window rolls forward now.
        self.windows.request(None)

    async def stop(self) -> None:
        """Says ``stopped`` on the controller topic, disconnects and ends the workers."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        await self.cameras.stop()
        await self.live.stop()
        await self.outbox.close(StatusPayload(status=AgentStatus.STOPPED, ts=now_ms()))
        for task in self._tasks:
            if task.get_name() != "controller-mqtt":
                task.cancel()
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=10)
        except TimeoutError:
            log.warning("workers did not stop within 10 s")
        self.db.dispose()

    # MQTT -------------------------------------------------------------------------------------------

    async def _on_connect(self, link: MqttLink) -> None:
        # Birth: agents answer a live "online" by republishing state and unacknowledged events. Not said,
        # it ends this session (BrokerUnavailable is the link's NotConnected) and the next one says it.
        # (Stored windows and playlists are written again at start: the outbox puts them back on the broker.)
        await self.outbox.send_now(StatusPayload(status=AgentStatus.ONLINE, ts=now_ms()))

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        # Enqueue only: the inbox counts and logs (rate-limited) what it drops.
        self.inbox.put(topic, payload)

    def _handle_batch(self, batch: list[tuple[str, bytes]]) -> dict[str, list[str]]:
        acks: dict[str, list[str]] = defaultdict(list)
        topics: set[str] = set()
        for topic, payload in batch:
            try:
                info = parse_topic(topic)
                result: HandleResult | None = self.fleet.handle(info, payload)
            except ProtocolError as exc:
                log.warning("dropped message on %s: %s", topic, exc)
                continue
            except Exception:
                log.exception("failed to record message on %s; carrying on", topic)
                continue
            topics.add(info.kind)
            if result is not None and result.ack_agent:
                acks[result.ack_agent].extend(result.ack_ids)
        if topics:
            self.events.publish(AgentsReported(frozenset(topics)))
        return acks

    async def _inbox_worker(self) -> None:
        next_drops = time.monotonic() + _DROPS_EVERY_S
        while True:
            batch = await self.inbox.get(_BATCH, timeout=_DROPS_EVERY_S)
            if time.monotonic() >= next_drops:
                next_drops = time.monotonic() + _DROPS_EVERY_S
                drops = self.inbox.take_drops()
                if drops:
                    try:
                        await asyncio.to_thread(record_drops, self.db, drops)
                    except Exception:
                        log.exception("could not record inbox drops %s; carrying on", drops)
            if not batch:
                continue
            acks = await asyncio.to_thread(self._handle_batch, batch)
            for agent_id, ids in acks.items():
                for start in range(0, len(ids), 1000):
                    try:
                        await self.outbox.send_now(EventsAck(ids=ids[start:start + 1000]), agent_id,
                                                   ttl_ms=_ACK_TTL_MS)
                    except BrokerUnavailable:
                        log.info("ack to %s not sent (link down); the agent will resend", agent_id)
