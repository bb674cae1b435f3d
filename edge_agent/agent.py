"""The agent process: wires the MQTT link, the verifier, the store, the media cache and the speaker.

The MQTT callback only enqueues; one worker task takes messages off the queue and routes them through
a handler table (by topic kind, then by command type). Anything malformed is logged and dropped. The
schedule window is kept by :class:`~edge_agent.window.WindowKeeper`, events wait in
:class:`~edge_agent.event_outbox.EventOutbox`, remote operations run in
:class:`~edge_agent.remote_ops.RemoteOps` through the narrow :class:`~edge_agent.remote_ops.OpsHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import loaphuong
from devices.audio_output import AlsaOutput, AlsaSettings, AudioOutput, FileSink
from devices.mqtt_link import LinkSettings, MqttLink, NotConnected, Will
from devices.protocol import (
    WARD_GROUPS_CAPABILITY,
    AgentGroups,
    AgentStatus,
    CameraDiscover,
    EventsAck,
    InfoPayload,
    OutputInfo,
    PlayOutcome,
    ProtocolError,
    Reply,
    ScheduleWindow,
    StatePayload,
    StatusPayload,
    TopicInfo,
    Topics,
    VerifiedCommand,
    Verifier,
    now_ms,
    parse_envelope,
    parse_json_object,
    parse_model,
    parse_topic,
    status_payload,
    ward_capability,
)
from edge_agent.amplifier import Amplifier
from edge_agent.camera_finder import CameraFinder
from edge_agent.config import AgentConfig, FileOutputSection
from edge_agent.event_outbox import EventOutbox
from edge_agent.groups import Groups, GroupsStore
from edge_agent.hooks import CommandHandler
from edge_agent.media_cache import MediaCache
from edge_agent.play_journal import PlayJournal
from edge_agent.remote_ops import RemoteOps, install_log_ring
from edge_agent.sd_notify import Notifier
from edge_agent.speaker import PlayJob, Speaker
from edge_agent.speaker_commands import SpeakerCommands
from edge_agent.store import AgentStore
from edge_agent.window import WindowKeeper

if TYPE_CHECKING:
    from edge_agent.signs import SignRunner

log = logging.getLogger(__name__)

#: Signed-but-unusable commands get an error reply; forged or misaddressed ones get silence.
_REPLY_REASONS = frozenset({"expired", "unknown_type", "bad_data", "from_future", "type_mismatch"})
_INBOX_LIMIT = 1000
#: The watchdog is not fed while one inbox message has been handled for longer than this.
_STUCK_AFTER_S = 120

TopicHandler = Callable[[TopicInfo, bytes, bool], Awaitable[None]]


def build_output(cfg: AgentConfig) -> AudioOutput:
    """The speaker output the config names."""
    if isinstance(cfg.output, FileOutputSection):
        return FileSink(cfg.output.name, cfg.output.directory, cfg.data_dir / "decoded")
    return AlsaOutput(cfg.output.name, AlsaSettings(device=cfg.output.device, player=cfg.output.player,
                                                    cache_dir=cfg.data_dir / "decoded"))


class Agent:
    """One agent; :meth:`run` until :meth:`request_stop`."""

    def __init__(self, cfg: AgentConfig, config_path: Path | None = None) -> None:
        #: The configuration the agent started with (what reloads applied since is ``ops.config``).
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = AgentStore(cfg.data_dir / "agent.sqlite3")
        self.media = MediaCache(cfg.data_dir / "media", cfg.media_base_urls(), cfg.read_token(),
                                cfg.max_media_bytes, capacity_bytes=cfg.media_cache_bytes,
                                in_use=lambda: self.speaker.shas_in_use() | self.window.standby_shas())
        self.output = build_output(cfg)
        # Downloads, decoding and player waits each hold a thread; keep them off the default pool.
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent-io")
        #: The ward and zones whose group topics it listens on (the config's, or what the controller gave).
        self.groups_store = GroupsStore(cfg.data_dir)
        self.groups = self.groups_store.load(cfg.ward, cfg.zones)
        self.verifier = Verifier(cfg.public_key(), cfg.agent_id, list(self.groups.zones),
                                 self.store.check_and_remember, ward=self.groups.ward)
        self._inbox: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(maxsize=_INBOX_LIMIT)
        self._state_dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self.link = MqttLink(
            LinkSettings(host=cfg.mqtt.host, port=cfg.mqtt.port, client_id=f"agent-{cfg.agent_id}",
                         username=cfg.mqtt.username, password=cfg.mqtt.password, keepalive=cfg.mqtt.keepalive,
                         session_expiry_s=cfg.mqtt.session_expiry_s,
                         tls_ca_file=str(cfg.mqtt.tls_ca_file) if cfg.mqtt.tls_ca_file else None,
                         subscriptions=Topics.agent_subscriptions(cfg.agent_id, list(self.groups.zones),
                                                                  self.groups.ward),
                         unsubscriptions=self.groups.stale()),
            self._on_message,
            will=Will(Topics.status(cfg.agent_id), status_payload(AgentStatus.OFFLINE, with_ts=False)),
            on_connect=self._on_connect,
        )
        #: Events wait on disk until the controller acknowledges them.
        self.outbox = EventOutbox(cfg.agent_id, self.store, self.link, self._in_thread, self._state_dirty.set)
        #: LED signs (``[[signs]]``): a thread each, fed the signed playlist and what the speaker plays.
        self.signs: SignRunner | None = None
        if cfg.signs:
            from edge_agent.signs import SignRunner  # Pillow and the sign drivers load only where there are signs

            self.signs = SignRunner(cfg.signs, cfg.data_dir, self.outbox.emit, self._state_dirty.set,
                                    self.media.fetch)
        #: The amplifier's power relay, switched around plays (``[amplifier]``).
        self.amp = Amplifier(cfg.amplifier, self._in_thread) if cfg.amplifier is not None else None
        #: Remote operations (``ops.*``); ``ops.exit_code`` is what the process exits with.
        self.ops = RemoteOps(self, cfg, config_path, install_log_ring())
        #: Which attempt of which play sounds, on disk: a play cut by a crash is reported and played again.
        self.journal = PlayJournal(self.store, self._in_thread, self.outbox.emit)
        self.speaker = Speaker(self.output, self.ops.saved_volume(cfg.volume), self.outbox.emit, self._play_done,
                               self._speaker_changed, self._executor, self.media.fetch, amp=self.amp,
                               journal=self.journal)
        #: ``speaker.*`` commands, and the accepted plays kept on disk until they have played.
        self.speaker_commands = SpeakerCommands(self.speaker, self.store, self.media.put, in_thread=self._in_thread,
                                                emit=self.outbox.emit, reply=self._reply)
        #: The plays of the latest schedule window, held by the speaker.
        self.window = WindowKeeper(self.store, self.speaker, self.journal, in_thread=self._in_thread,
                                   emit=self.outbox.emit, fetch=self.media.fetch, output_name=self.output.name,
                                   on_change=self._state_dirty.set)
        #: systemd's notify socket: READY=1 once running, WATCHDOG=1 while the loop is healthy.
        self.notifier = Notifier()
        self._busy_since: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._topic_handlers: dict[str, TopicHandler] = {
            "cmd": self._handle_command,
            "schedule": self._handle_schedule,
            "controller_status": self._handle_controller_status,
        }
        if self.signs is not None:
            self._topic_handlers["signs"] = self._handle_signs
        self._command_handlers: dict[str, CommandHandler] = {
            **self.speaker_commands.handlers(),
            "events.ack": self._cmd_ack,
            "agent.ping": self._cmd_ping,
            "agent.groups": self._cmd_groups,
        }
        #: WS-Discovery of ONVIF cameras, when the config has a [cameras] section.
        self.cameras = CameraFinder(cfg.cameras, self.outbox.emit) if cfg.cameras is not None else None
        if self.cameras is not None:
            self._command_handlers["camera.discover"] = self._cmd_camera_discover
        self._command_handlers.update(self.ops.handlers())

    # lifecycle --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Runs until asked to stop, then says ``stopped`` and disconnects cleanly."""
        log.info("agent %s starting (ward: %s, zones: %s, output: %s/%s)", self.cfg.agent_id,
                 self.groups.ward or "- (legacy groups)", ",".join(self.groups.zones) or "-", self.output.kind,
                 self.output.name)
        cut = await self.journal.recover()
        await self.speaker_commands.restore()
        await self.window.restore()
        closed = await self.journal.close_unrestored()
        if cut or closed:
            log.warning("%d play(s) cut by the last stop reported; %d could not go on", cut, closed)
        if self.signs is not None:
            await self.signs.start()
        tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("mqtt", self.link.run()), ("inbox", self._inbox_worker()),
            ("outbox", self.outbox.run()), ("state", self._state_worker()),
            ("prefetch", self.window.prefetch()), ("housekeeping", self._housekeeping()),
            ("journal", self.journal.heartbeat()))]
        if self.cameras is not None:
            tasks.append(asyncio.create_task(self.cameras.run(), name="cameras"))
        self._tasks = list(tasks)
        if self.notifier.watchdog_interval_s is not None:
            tasks.append(asyncio.create_task(self._watchdog(self.notifier.watchdog_interval_s), name="watchdog"))
        self.notifier.notify("READY=1")
        await self._stop.wait()
        log.info("agent %s stopping", self.cfg.agent_id)
        self.notifier.notify("STOPPING=1")
        await self.speaker.shutdown()
        if self.amp is not None:
            await self.amp.close()
        if self.signs is not None:
            await self.signs.stop()
        await self.link.close([(Topics.status(self.cfg.agent_id), status_payload(AgentStatus.STOPPED), True)])
        await asyncio.wait_for(asyncio.gather(tasks[0], return_exceptions=True), timeout=10)
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.cameras is not None:
            self.cameras.close()
        self.store.close()
        self.notifier.close()

    def request_stop(self) -> None:
        """Asks :meth:`run` to finish (signal handlers call this)."""
        self._stop.set()

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def in_thread(self, fn: Callable[[], _T]) -> _T:
        """Runs blocking ``fn`` on the agent's executor (remote operations use it)."""
        result: _T = await self._in_thread(fn)
        return result

    def mark_state_dirty(self) -> None:
        """Asks for a fresh state message (volume or amplifier changed)."""
        self._state_dirty.set()

    def set_volume(self, volume: int) -> None:
        """The speaker's volume for plays that name none (remote operations set it)."""
        self.speaker.volume = volume

    def keep_media(self, sha256: str, data: bytes) -> None:
        """Puts a recording into the media cache (a remote operation's test tone). Blocks."""
        self.media.put(sha256, data)

    def submit(self, job: PlayJob) -> bool:
        """Hands a play to the speaker; False if one with that id is already known."""
        return self.speaker.submit(job)

    def healthy(self) -> bool:
        """True while every worker runs and no message has been stuck in a handler (feeds the watchdog)."""
        if any(task.done() for task in self._tasks):
            return False
        return self._busy_since is None or time.monotonic() - self._busy_since < _STUCK_AFTER_S

    async def _watchdog(self, interval_s: float) -> None:
        # Runs on the event loop itself: a blocked loop stops the pings, and systemd restarts the agent.
        while True:
            if self.healthy():
                self.notifier.notify("WATCHDOG=1")
            else:
                log.error("agent unhealthy (a worker ended or a handler is stuck); not feeding the watchdog")
            await asyncio.sleep(interval_s)

    # MQTT -------------------------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        try:
            self._inbox.put_nowait((topic, payload, retained))
        except asyncio.QueueFull:
            log.warning("inbox full; dropped message on %s", topic)

    async def _on_connect(self, link: MqttLink) -> None:
        await link.publish(Topics.status(self.cfg.agent_id), status_payload(AgentStatus.ONLINE), retain=True)
        await self._publish_info()
        self._state_dirty.set()
        await self.outbox.resend_all()

    async def _publish_info(self) -> None:
        info = InfoPayload(agent_id=self.cfg.agent_id, version=loaphuong.__version__, hostname=socket.gethostname(),
                           capabilities=["speaker", "schedule", "relay", "live", "ops",
                                         *(["amplifier"] if self.amp is not None else []),
                                         *(["camera_discovery"] if self.cameras is not None else []),
                                         *(["signs"] if self.signs is not None else []),
                                         WARD_GROUPS_CAPABILITY,
                                         *([ward_capability(self.groups.ward)] if self.groups.ward else [])],
                           zones=list(self.groups.zones),
                           outputs=[OutputInfo(name=self.output.name, kind=self.output.kind)])
        await self.link.publish(Topics.info(self.cfg.agent_id), info.model_dump_json().encode(), retain=True)

    async def _inbox_worker(self) -> None:
        while True:
            topic, payload, retained = await self._inbox.get()
            self._busy_since = time.monotonic()
            try:
                info = parse_topic(topic)
                handler = self._topic_handlers.get(info.kind)
                if handler is None:
                    raise ProtocolError("unexpected_topic", topic)
                await handler(info, payload, retained)
            except ProtocolError as exc:
                log.warning("dropped message on %s: %s", topic, exc)
            except NotConnected as exc:
                log.warning("could not answer message on %s: link down (%s)", topic, exc)
            except Exception:
                log.exception("handler failed for message on %s; carrying on", topic)
            finally:
                self._busy_since = None

    async def _handle_controller_status(self, info: TopicInfo, payload: bytes, retained: bool) -> None:
        if not payload:
            return
        status = parse_model(StatusPayload, parse_json_object(payload))
        if status.status is AgentStatus.ONLINE and not retained:
            # The controller (re)started: give it our picture and anything it has not acknowledged.
            log.info("controller came online; republishing info and state")
            await self._publish_info()
            self._state_dirty.set()
            await self.outbox.resend_all()

    async def _handle_command(self, info: TopicInfo, payload: bytes, retained: bool) -> None:
        try:
            cmd: VerifiedCommand = await self._in_thread(self.verifier.verify, payload, info)
        except ProtocolError as exc:
            # A command for two of this agent's zones arrives on both topics: the second copy is a replay.
            # A bad attachment gets silence too: it is not signed, so anyone on the path could have spoilt it.
            level = logging.INFO if exc.reason == "replayed" else logging.WARNING
            log.log(level, "rejected command on %s: %s", f"{info.kind}/{info.msg_type}", exc)
            if exc.reason in _REPLY_REASONS:
                msg_id = _envelope_id(payload)
                if msg_id:
                    await self._reply(msg_id, f"{exc.reason}: {exc.detail}"[:300])
            return
        handler = self._command_handlers.get(cmd.envelope.type)
        if handler is None:  # a type the protocol knows but this agent does not do
            await self._reply(cmd.envelope.id, f"unsupported: {cmd.envelope.type}")
            return
        log.log(logging.DEBUG if cmd.envelope.type == "events.ack" else logging.INFO,
                "command %s %s accepted", cmd.envelope.type, cmd.envelope.id)
        await handler(cmd)

    async def _reply(self, msg_id: str, error: str | None = None) -> None:
        await self.reply(msg_id, error)

    async def reply(self, msg_id: str, error: str | None = None, data: dict[str, Any] | None = None) -> None:
        """Answers command ``msg_id``: ``ok`` (with ``data`` for remote operations) or the error."""
        body = Reply(id=msg_id, status="error" if error else "ok", error=error, ts=now_ms(), data=data)
        await self.link.publish(Topics.reply(self.cfg.agent_id), body.model_dump_json(exclude_none=True).encode())

    # schedule window and signs ----------------------------------------------------------------------

    async def _handle_schedule(self, info: TopicInfo, payload: bytes, retained: bool) -> None:
        if not payload:
            return  # the controller cleared the retained window; keep playing what we accepted
        try:
            cmd: VerifiedCommand = await self._in_thread(self.verifier.verify, payload, info)
        except ProtocolError as exc:
            # The broker hands the retained window over again on every reconnect: already taken.
            level = logging.DEBUG if exc.reason == "replayed" else logging.WARNING
            log.log(level, "schedule window not taken: %s", exc)
            return
        await self.window.take(cmd.data_as(ScheduleWindow), payload)
        await self._reply(cmd.envelope.id)

    def _speaker_changed(self) -> None:
        self._state_dirty.set()
        if self.signs is not None:
            # While an announcement plays, signs that want it show its title, then return to their playlist.
            self.signs.set_playing(self.speaker.now_playing())

    async def _handle_signs(self, info: TopicInfo, payload: bytes, retained: bool) -> None:
        assert self.signs is not None

        async def verify(raw: bytes, topic: TopicInfo) -> VerifiedCommand:
            result: VerifiedCommand = await self._in_thread(self.verifier.verify, raw, topic)
            return result

        await self.signs.handle(info, payload, retained, verify, self._reply)

    async def _cmd_ack(self, cmd: VerifiedCommand) -> None:
        ids = cmd.data_as(EventsAck).ids
        known = await self.outbox.ack(ids)
        log.debug("controller acknowledged %d event(s), %d known", len(ids), known)
        self._state_dirty.set()

    async def _cmd_ping(self, cmd: VerifiedCommand) -> None:
        await self._reply(cmd.envelope.id)

    async def _cmd_groups(self, cmd: VerifiedCommand) -> None:
        # Kept on disk first, so a restart comes back to the new groups; then verifier, subscriptions, info.
        given = cmd.data_as(AgentGroups)
        try:
            await self._in_thread(self.groups_store.save, given)
        except OSError as exc:
            await self._reply(cmd.envelope.id, f"io_error: cannot keep the groups: {exc}"[:300])
            return
        old, self.groups = self.groups, Groups(given.ward, tuple(dict.fromkeys(given.zones)))
        self.verifier.set_groups(self.groups.ward, list(self.groups.zones))
        log.warning("groups changed by the controller: ward %s → %s, zones %s → %s", old.ward or "-",
                    self.groups.ward, ",".join(old.zones) or "-", ",".join(self.groups.zones) or "-")
        await self.link.change_subscriptions(
            Topics.agent_subscriptions(self.cfg.agent_id, list(self.groups.zones), self.groups.ward),
            [*old.subscriptions(), *self.groups.stale()])
        await self._publish_info()
        await self._reply(cmd.envelope.id)

    async def _cmd_camera_discover(self, cmd: VerifiedCommand) -> None:
        # Answered at once; the probe runs on the finder's thread and reports by event.
        assert self.cameras is not None
        await self._reply(cmd.envelope.id)
        self.cameras.request(cmd.data_as(CameraDiscover).timeout_ms, cmd.envelope.id)

    async def _play_done(self, job: PlayJob, outcome: PlayOutcome | None) -> None:
        await self.speaker_commands.play_ended(job.play_id)
        if outcome is not None:  # None: withdrawn from the window, never played
            await self.window.play_ended(job.play_id)

    # state ------------------------------------------------------------------------------------------

    async def _state_worker(self) -> None:
        while True:
            await self._state_dirty.wait()
            self._state_dirty.clear()
            if not self.link.connected.is_set():
                continue
            state = StatePayload(volume=self.speaker.volume, now_playing=self.speaker.now_playing(),
                                 pending=self.speaker.pending_count,
                                 unacked_events=await self.outbox.unacked_count(),
                                 schedule_version=self.window.version, ts=now_ms(),
                                 signs=self.signs.states() if self.signs is not None else [],
                                 sign_playlist_version=self.signs.playlist_version if self.signs else None)
            with contextlib.suppress(NotConnected):
                await self.link.publish(Topics.state(self.cfg.agent_id),
                                        state.model_dump_json(exclude_none=True).encode(), retain=True)
            # Coalesce bursts of changes into one state message.
            await asyncio.sleep(0.2)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(3600)
            pruned = await self._in_thread(self.store.prune_seen)
            done = await self._in_thread(self.store.prune_done)
            log.debug("pruned %d expired command ids and %d old done plays", pruned, done)


_T = TypeVar("_T")


def _envelope_id(payload: bytes) -> str | None:
    try:
        return parse_envelope(payload).id
    except ProtocolError:
        return None
