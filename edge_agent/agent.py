"""The agent process: wires the MQTT link, the verifier, the store, the media cache and the speaker.

The MQTT callback only enqueues; one worker task takes messages off the queue and routes them through
a handler table (by topic kind, then by command type). Anything malformed is logged and dropped.
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

from pydantic import BaseModel

import loaphuong
from devices.audio_output import AlsaOutput, AlsaSettings, AudioOutput, FileSink
from devices.mqtt_link import LinkSettings, MqttLink, NotConnected, Will
from devices.protocol import (
    AgentError,
    AgentStatus,
    CameraDiscover,
    EventsAck,
    InfoPayload,
    MediaSegment,
    OutputInfo,
    PlayFinished,
    PlayOutcome,
    ProtocolError,
    RelaySegment,
    Reply,
    ScheduledPlay,
    ScheduleWindow,
    SpeakerLive,
    SpeakerLiveEnd,
    SpeakerPlay,
    SpeakerStop,
    StatePayload,
    StatusPayload,
    TopicInfo,
    Topics,
    VerifiedCommand,
    Verifier,
    make_event,
    now_ms,
    parse_envelope,
    parse_json_object,
    parse_model,
    parse_topic,
    status_payload,
)
from edge_agent.amplifier import Amplifier
from edge_agent.camera_finder import CameraFinder
from edge_agent.config import AgentConfig, FileOutputSection
from edge_agent.media_cache import MediaCache, MediaError
from edge_agent.play_journal import PlayJournal
from edge_agent.remote_ops import RemoteOps, install_log_ring
from edge_agent.sd_notify import Notifier
from edge_agent.speaker import PlayJob, Speaker
from edge_agent.store import AgentStore, PlayEnd

if TYPE_CHECKING:
    from edge_agent.signs import SignRunner

log = logging.getLogger(__name__)

#: Unacknowledged events are sent again after this long.
RESEND_AFTER_MS = 20_000
#: Signed-but-unusable commands get an error reply; forged or misaddressed ones get silence.
_REPLY_REASONS = frozenset({"expired", "unknown_type", "bad_data", "from_future", "type_mismatch"})
_INBOX_LIMIT = 1000
#: The watchdog is not fed while one inbox message has been handled for longer than this.
_STUCK_AFTER_S = 120

CommandHandler = Callable[[VerifiedCommand], Awaitable[None]]
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
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = AgentStore(cfg.data_dir / "agent.sqlite3")
        self.media = MediaCache(cfg.data_dir / "media", cfg.media_base_urls(), cfg.read_token(),
                                cfg.max_media_bytes, capacity_bytes=cfg.media_cache_bytes,
                                in_use=lambda: self.speaker.shas_in_use() | set(self._standby))
        self.output = build_output(cfg)
        # Downloads, decoding and player waits each hold a thread; keep them off the default pool.
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent-io")
        self.verifier = Verifier(cfg.public_key(), cfg.agent_id, cfg.zones, self.store.check_and_remember)
        self._inbox: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(maxsize=_INBOX_LIMIT)
        self._flush_now = asyncio.Event()
        self._state_dirty = asyncio.Event()
        self._stop = asyncio.Event()
        #: LED signs (``[[signs]]``): a thread each, fed the signed playlist and what the speaker plays.
        self.signs: SignRunner | None = None
        if cfg.signs:
            from edge_agent.signs import SignRunner  # Pillow and the sign drivers load only where there are signs

            self.signs = SignRunner(cfg.signs, cfg.data_dir, self.emit, self._state_dirty.set, self.media.fetch)
        #: The amplifier's power relay, switched around plays (``[amplifier]``).
        self.amp = Amplifier(cfg.amplifier, self._in_thread) if cfg.amplifier is not None else None
        #: Remote operations (``ops.*``); ``ops.exit_code`` is what the process exits with.
        self.ops = RemoteOps(self, config_path, install_log_ring())
        #: Which attempt of which play sounds, on disk: a play cut by a crash is reported and played again.
        self.journal = PlayJournal(self.store, self._in_thread, self.emit)
        self.speaker = Speaker(self.output, self.ops.saved_volume(cfg.volume), self.emit, self._play_done,
                               self._speaker_changed, self._executor, self.media.fetch, amp=self.amp,
                               journal=self.journal)
        #: systemd's notify socket: READY=1 once running, WATCHDOG=1 while the loop is healthy.
        self.notifier = Notifier()
        self._busy_since: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        #: Plays of the current schedule window that the speaker holds, by play id.
        self._scheduled: dict[str, ScheduledPlay] = {}
        #: Standby alarm recordings the window names: kept in the cache, never evicted.
        self._standby: dict[str, MediaSegment] = {}
        self._schedule_version: int | None = None
        self._prefetch_wanted = asyncio.Event()
        self.link = MqttLink(
            LinkSettings(host=cfg.mqtt.host, port=cfg.mqtt.port, client_id=f"agent-{cfg.agent_id}",
                         username=cfg.mqtt.username, password=cfg.mqtt.password, keepalive=cfg.mqtt.keepalive,
                         session_expiry_s=cfg.mqtt.session_expiry_s,
                         tls_ca_file=str(cfg.mqtt.tls_ca_file) if cfg.mqtt.tls_ca_file else None,
                         subscriptions=Topics.agent_subscriptions(cfg.agent_id, cfg.zones)),
            self._on_message,
            will=Will(Topics.status(cfg.agent_id), status_payload(AgentStatus.OFFLINE, with_ts=False)),
            on_connect=self._on_connect,
        )
        self._topic_handlers: dict[str, TopicHandler] = {
            "cmd": self._handle_command,
            "schedule": self._handle_schedule,
            "controller_status": self._handle_controller_status,
        }
        if self.signs is not None:
            self._topic_handlers["signs"] = self._handle_signs
        self._command_handlers: dict[str, CommandHandler] = {
            "speaker.play": self._cmd_play,
            "speaker.stop": self._cmd_stop,
            "speaker.live": self._cmd_live,
            "speaker.live_end": self._cmd_live_end,
            "events.ack": self._cmd_ack,
            "agent.ping": self._cmd_ping,
        }
        #: WS-Discovery of ONVIF cameras, when the config has a [cameras] section.
        self.cameras = CameraFinder(cfg.cameras, self.emit) if cfg.cameras is not None else None
        if self.cameras is not None:
            self._command_handlers["camera.discover"] = self._cmd_camera_discover
        self._command_handlers.update(self.ops.handlers())

    # lifecycle --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Runs until asked to stop, then says ``stopped`` and disconnects cleanly."""
        log.info("agent %s starting (zones: %s, output: %s/%s)", self.cfg.agent_id,
                 ",".join(self.cfg.zones) or "-", self.output.kind, self.output.name)
        cut = await self.journal.recover()
        await self._restore_pending()
        await self._restore_schedule()
        closed = await self.journal.close_unrestored()
        if cut or closed:
            log.warning("%d play(s) cut by the last stop reported; %d could not go on", cut, closed)
        if self.signs is not None:
            await self.signs.start()
        tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("mqtt", self.link.run()), ("inbox", self._inbox_worker()),
            ("outbox", self._outbox_worker()), ("state", self._state_worker()),
            ("prefetch", self._prefetch_worker()), ("housekeeping", self._housekeeping()),
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
        # Whatever was sent on the previous connection may have died with it.
        await self._in_thread(self.store.mark_all_unsent)
        self._flush_now.set()

    async def _publish_info(self) -> None:
        info = InfoPayload(agent_id=self.cfg.agent_id, version=loaphuong.__version__, hostname=socket.gethostname(),
                           capabilities=["speaker", "schedule", "relay", "live", "ops",
                                         *(["amplifier"] if self.amp is not None else []),
                                         *(["camera_discovery"] if self.cameras is not None else []),
                                         *(["signs"] if self.signs is not None else [])],
                           zones=self.cfg.zones,
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
            await self._in_thread(self.store.mark_all_unsent)
            self._flush_now.set()

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

    # commands ---------------------------------------------------------------------------------------

    async def _cmd_play(self, cmd: VerifiedCommand) -> None:
        order = _as(cmd.data, SpeakerPlay)
        if cmd.attachment is not None:
            # An alarm brings its audio along: into the cache now, so nothing is downloaded before it plays.
            try:
                await self._in_thread(self.media.put, order.sha256, cmd.attachment)
            except MediaError as exc:
                log.error("command %s refused: %s", cmd.envelope.id, exc)
                await self.emit("error", AgentError(code=exc.code, message=str(exc)[:1000], ref=cmd.envelope.id,
                                                    announcement_id=order.announcement_id))
                await self._reply(cmd.envelope.id, f"media_failed: {exc}"[:300])
                return
        await self._in_thread(self.store.add_pending, cmd.envelope.id, cmd.envelope.to_bytes(), order.start_at)
        self._schedule(cmd)
        await self._reply(cmd.envelope.id)

    def _schedule(self, cmd: VerifiedCommand) -> None:
        order = _as(cmd.data, SpeakerPlay)
        segment = MediaSegment(sha256=order.sha256, size=order.size, duration_ms=order.duration_ms, mime=order.mime,
                               title=order.title)
        job = PlayJob(play_id=cmd.envelope.id, priority=order.priority, start_at=order.start_at,
                      latest_start=cmd.envelope.exp or 0, segments=[segment], volume=order.volume,
                      announcement_id=order.announcement_id, title=order.title, resumable=True)
        self.speaker.submit(job)

    # schedule window --------------------------------------------------------------------------------

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
        window = _as(cmd.data, ScheduleWindow)
        if self._schedule_version is not None and window.version <= self._schedule_version:
            log.info("schedule window v%d ignored: v%d is newer", window.version, self._schedule_version)
            await self._reply(cmd.envelope.id)
            return
        await self._in_thread(self.store.save_schedule, window.version, payload)
        await self._apply_window(window)
        await self._reply(cmd.envelope.id)

    async def _restore_schedule(self) -> None:
        """Plays from the last window accepted before a restart (its signature was checked on arrival)."""
        stored = await self._in_thread(self.store.schedule)
        if stored is None:
            return
        try:
            window = parse_model(ScheduleWindow, parse_envelope(stored[1]).data)
        except ProtocolError as exc:
            log.error("stored schedule window unreadable, waiting for a new one: %s", exc)
            return
        await self._apply_window(window)

    async def _apply_window(self, window: ScheduleWindow) -> None:
        """Makes the speaker hold exactly the window's plays that have not been played yet."""
        wanted = {p.play_id: p for p in window.plays}
        withdrawn = 0
        for play_id in list(self._scheduled):
            if play_id not in wanted:
                if self.speaker.withdraw(play_id):
                    withdrawn += 1
                self._scheduled.pop(play_id, None)
        done = await self._in_thread(self.store.done_among, list(wanted))
        now = now_ms()
        added = missed = 0
        for play_id, play in wanted.items():
            if play_id in done or self.speaker.known(play_id):
                self._scheduled.setdefault(play_id, play)
                continue
            if play.latest_start <= now:
                if self.journal.awaits(play_id):
                    continue  # it sounded before a restart: the journal reports its last attempt
                # Its time passed while this agent was off or unreachable: say so in proof of play, once.
                await self._missed(play)
                missed += 1
                continue
            self._scheduled[play_id] = play
            self.speaker.submit(PlayJob(play_id=play_id, priority=play.priority, start_at=play.start_at,
                                        latest_start=play.latest_start, segments=list(play.segments),
                                        volume=play.volume, item_id=play.item_id, title=play.title,
                                        resumable=True))
            added += 1
        self._schedule_version = window.version
        self._standby = {seg.sha256: seg for seg in window.standby}
        log.info("schedule window v%d: %d plays (%d new, %d withdrawn, %d missed) until %d, %d standby alarm(s)",
                 window.version, len(wanted), added, withdrawn, missed, window.window_end, len(self._standby))
        self._prefetch_wanted.set()
        self._state_dirty.set()

    async def _missed(self, play: ScheduledPlay) -> None:
        first_media = next((s.sha256 for s in play.segments if isinstance(s, MediaSegment)), None)
        await self.emit("play.finished", PlayFinished(
            play_id=play.play_id, item_id=play.item_id, sha256=first_media, priority=play.priority,
            scheduled_start=play.start_at, actual_start=None, ended_at=now_ms(), outcome=PlayOutcome.EXPIRED,
            reason="missed: the agent was not running at its start time", output=self.output.name))
        await self._in_thread(self.store.mark_done, play.play_id)

    async def _prefetch_worker(self) -> None:
        """Downloads every recording the window needs, soonest first, so a dropped link later costs nothing."""
        while True:
            await self._prefetch_wanted.wait()
            self._prefetch_wanted.clear()
            # Standby alarms first: an emergency can come at any moment, the next bulletin has its time.
            todo: list[MediaSegment] = list(self._standby.values())
            seen: set[str] = set(self._standby)
            for play in sorted(self._scheduled.values(), key=lambda p: p.start_at):
                for seg in play.segments:
                    if isinstance(seg, MediaSegment) and seg.sha256 not in seen:
                        seen.add(seg.sha256)
                        todo.append(seg)
            failed = 0
            for seg in todo:
                try:
                    await self._in_thread(self.media.fetch, seg.sha256, seg.size)
                except MediaError as exc:
                    failed += 1
                    log.warning("prefetch of %s failed (%s); retrying later", seg.sha256[:12], exc)
            if failed:
                await asyncio.sleep(30)
                self._prefetch_wanted.set()

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

    async def _cmd_stop(self, cmd: VerifiedCommand) -> None:
        stopped = await self.speaker.stop(_as(cmd.data, SpeakerStop).priority)
        log.info("stop command ended %d play(s)", stopped)
        await self._reply(cmd.envelope.id)

    async def _cmd_live(self, cmd: VerifiedCommand) -> None:
        # A live session is now or never: it is not kept for after a restart, and it goes through the
        # speaker like a relay so pre-emption and proof of play follow the same rules.
        order = _as(cmd.data, SpeakerLive)
        now = now_ms()
        url = f"{order.url}?token={order.token}"
        job = PlayJob(play_id=f"live-{order.session_id}", priority=order.priority, start_at=now,
                      latest_start=now + order.give_up_ms,
                      segments=[RelaySegment(url=url, duration_ms=order.max_duration_ms, title=order.title)],
                      volume=order.volume, title=order.title, give_up_ms=order.give_up_ms)
        if not self.speaker.submit(job):
            await self._reply(cmd.envelope.id, f"live session {order.session_id} already playing")
            return
        await self._reply(cmd.envelope.id)

    async def _cmd_live_end(self, cmd: VerifiedCommand) -> None:
        session_id = _as(cmd.data, SpeakerLiveEnd).session_id
        ended = await self.speaker.end(f"live-{session_id}")
        log.info("live session %s ended (%s)", session_id, "stopped" if ended else "was not playing")
        await self._reply(cmd.envelope.id)

    async def _cmd_ack(self, cmd: VerifiedCommand) -> None:
        ids = _as(cmd.data, EventsAck).ids
        known = await self._in_thread(self.store.ack_events, ids)
        log.debug("controller acknowledged %d event(s), %d known", len(ids), known)
        self._state_dirty.set()

    async def _cmd_ping(self, cmd: VerifiedCommand) -> None:
        await self._reply(cmd.envelope.id)

    async def _cmd_camera_discover(self, cmd: VerifiedCommand) -> None:
        # Answered at once; the probe runs on the finder's thread and reports by event.
        assert self.cameras is not None
        await self._reply(cmd.envelope.id)
        self.cameras.request(_as(cmd.data, CameraDiscover).timeout_ms, cmd.envelope.id)

    async def _restore_pending(self) -> None:
        """Re-arms plays accepted before a restart (their signatures were checked when they came)."""
        for raw in await self._in_thread(self.store.pending):
            try:
                env = parse_envelope(raw)
                order = parse_model(SpeakerPlay, env.data)
            except ProtocolError as exc:
                log.error("dropping unreadable stored play: %s", exc)
                continue
            if (env.exp or 0) <= now_ms():
                await self._in_thread(self.store.remove_pending, env.id)
                continue
            log.info("restoring accepted play %s starting at %d", env.id, order.start_at)
            self._schedule(VerifiedCommand(env, order))

    async def _play_done(self, job: PlayJob, outcome: PlayOutcome | None) -> None:
        await self._in_thread(self.store.remove_pending, job.play_id)
        if job.play_id in self._scheduled and outcome is not None:
            await self._in_thread(self.store.mark_done, job.play_id)
            self._scheduled.pop(job.play_id, None)

    # events and state -------------------------------------------------------------------------------

    async def emit(self, msg_type: str, data: BaseModel, play_end: PlayEnd | None = None) -> None:
        """Queues an event on disk and wakes the sender; it goes out when the link allows.

        ``play_end``: what a ``play.finished`` does to the play's records, written in the same transaction.
        """
        env = make_event(self.cfg.agent_id, msg_type, data)
        await self._in_thread(self.store.enqueue_event, env.id, Topics.event(self.cfg.agent_id, msg_type),
                              env.to_bytes(), play_end)
        self._flush_now.set()

    async def _outbox_worker(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), timeout=RESEND_AFTER_MS / 1000)
            self._flush_now.clear()
            if not self.link.connected.is_set():
                continue
            try:
                while rows := await self._in_thread(self.store.events_due, RESEND_AFTER_MS):
                    for row in rows:
                        await self.link.publish(row.topic, row.payload)
                    await self._in_thread(self.store.mark_sent, [r.id for r in rows])
                    if len(rows) < 200:
                        break
            except NotConnected:
                log.info("link dropped while sending events; they stay queued")
            self._state_dirty.set()

    async def _state_worker(self) -> None:
        while True:
            await self._state_dirty.wait()
            self._state_dirty.clear()
            if not self.link.connected.is_set():
                continue
            state = StatePayload(volume=self.speaker.volume, now_playing=self.speaker.now_playing(),
                                 pending=self.speaker.pending_count,
                                 unacked_events=await self._in_thread(self.store.unacked_count),
                                 schedule_version=self._schedule_version, ts=now_ms(),
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


_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


def _as(data: BaseModel, model: type[_M]) -> _M:
    assert isinstance(data, model)
    return data


def _envelope_id(payload: bytes) -> str | None:
    try:
        return parse_envelope(payload).id
    except ProtocolError:
        return None
