"""Live sessions: who may speak to which speakers now, feeding Icecast, telling agents, keeping the record.

A session is created (targets resolved, Icecast checked, "one voice per speaker" enforced), then goes
live: its ffmpeg source connects to Icecast on ``/live-{id}.ogg``; once the mount is up, every target
agent gets a signed ``speaker.live`` with the mount URL and the session's listener token. The session
ends when the officer ends it, the browser goes away or falls silent, the relay's upstream is lost, or
it reaches its longest duration: the source stops (the recording is closed) and the agents get
``speaker.live_end``. A session of higher priority aimed at an agent that is already live takes it over
once it is itself on air (the older session gets ``speaker.live_end`` on those agents); both records say
so. A take-over that never gets on air takes nothing: the older session keeps its agents, and both
records say the take-over failed and why.

Each target agent gets its own listener token for the session: Icecast's listener check names the
agent a token belongs to, and a token stops opening the mount once its agent leaves the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from controller.accounts.reach import NotInReach
from controller.broadcasts.live.active import ActiveSession, LiveError, new_listener_token, new_session_id
from controller.broadcasts.live.icecast import IcecastAccess, icecast_up, mount_up
from controller.broadcasts.live.source import (
    PCM_CHANNELS,
    PCM_RATE,
    PCM_SAMPLE_BYTES,
    SourceFeeder,
    microphone_input,
    relay_input,
    source_command,
)
from controller.messaging.outbox import BrokerUnavailable, Outbox
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import FIRST_WARD, Device, LiveSession, User, utcnow
from devices.protocol import Priority, SpeakerLive, SpeakerLiveEnd, valid_relay_url

log = logging.getLogger(__name__)

#: How long a live session's commands are valid: they act now or never.
_COMMAND_TTL_MS = 30_000
#: How long the source has to appear on Icecast before the session is called failed.
MOUNT_TIMEOUT_S = 8.0
_RETENTION_EVERY_S = 3600.0


class LiveHub:
    """Owns every live session of this controller."""

    def __init__(self, settings: Settings, db: Database, outbox: Outbox) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox
        self.directory = settings.data_dir / "live"
        self._sessions: dict[str, ActiveSession] = {}
        self._lock = asyncio.Lock()
        self._retention: asyncio.Task[None] | None = None
        #: Bench hook: a directory where each session's frame timing is written when it ends. Off (None)
        #: in production, where the only cost is this attribute test per frame.
        trace = os.environ.get("LP_LIVE_TRACE", "")
        self._trace_dir = Path(trace) if trace else None

    # life ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Marks sessions a previous run left open as failed, and starts the retention sweeper."""
        self.directory.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._close_orphans)
        self._retention = asyncio.create_task(self._retention_loop(), name="live-retention")

    async def stop(self) -> None:
        """Ends every session (agents are told) and stops the sweeper."""
        for sess in list(self._sessions.values()):
            await self.end(sess, "controller stopping", failed=True)
        if self._retention is not None:
            self._retention.cancel()
            await asyncio.gather(self._retention, return_exceptions=True)

    def _close_orphans(self) -> None:
        with self.db.session() as session:
            for row in session.scalars(select(LiveSession).where(LiveSession.status.in_(("starting", "live")))):
                row.status, row.ended_at = "failed", utcnow()
                row.end_reason = "controller restarted during the session"

    # Icecast ------------------------------------------------------------------------------------------

    def access(self) -> IcecastAccess | None:
        """Icecast's address and source password, or None when live broadcasting is not set up."""
        path = self.settings.icecast_file
        if path is None:
            return None
        try:
            return IcecastAccess.load(path)
        except ValueError as exc:
            log.error("icecast access file unusable: %s", exc)
            return None

    async def availability(self) -> str | None:
        """None if a session can go live now, else why not (shown before the officer presses the button)."""
        access = self.access()
        if access is None:
            return "live broadcasting is not set up on this controller (no Icecast configured)"
        problem = await asyncio.to_thread(icecast_up, access)
        return None if problem is None else f"Icecast is down: {problem}"

    def listener_agent(self, mount_with_query: str) -> str | None:
        """Icecast's URL auth: the agent whose token this ``/live-{id}.ogg?token=…`` carries, if the
        session is live and the agent still in it; None refuses the listener."""
        path, _, query = mount_with_query.partition("?")
        if not (path.startswith("/live-") and path.endswith(".ogg")):
            return None
        sess = self._sessions.get(path[len("/live-"):-len(".ogg")])
        token = urllib.parse.parse_qs(query).get("token", [""])[0]
        if sess is None or sess.ended.is_set() or not token:
            return None
        found = None
        for agent_id, issued in sess.tokens.items():
            # Every token is compared (no early exit), so timing does not tell which agent came close.
            if hmac.compare_digest(token.encode(), issued.encode()):
                found = agent_id
        return found if found in sess.targets else None

    def listener_allowed(self, mount_with_query: str) -> bool:
        """True if :meth:`listener_agent` names an agent."""
        return self.listener_agent(mount_with_query) is not None

    # sessions -----------------------------------------------------------------------------------------

    def get(self, session_id: str) -> ActiveSession | None:
        """An active session by id."""
        return self._sessions.get(session_id)

    async def create(self, user: User, agents: list[str], zones: list[str], priority: Priority, title: str,
                     source: str, relay_url: str | None, *, ward: str = FIRST_WARD,
                     hide_unknown: bool = False) -> ActiveSession:
        """Creates a session of ``ward`` (not yet live) reaching that ward's agents; raises :class:`LiveError`
        with the reason it cannot (or, with ``hide_unknown``, :class:`~controller.accounts.reach.NotInReach`
        for an agent unknown in the ward, as another ward's would be)."""
        if source == "relay" and (relay_url is None or not valid_relay_url(relay_url)):
            raise LiveError(422, "a relay needs an absolute http(s) upstream URL")
        problem = await self.availability()
        if problem is not None:
            raise LiveError(503, problem)
        targets = await asyncio.to_thread(self._resolve_targets, agents, zones, ward, hide_unknown)
        sess = ActiveSession(id=new_session_id(), tokens={a: new_listener_token() for a in targets},
                             priority=priority, owner_id=user.id, owner_name=user.username, source=source,
                             relay_url=relay_url, title=title, targets=set(targets), all_targets=set(targets))
        if self._trace_dir is not None:
            sess.trace = []
        async with self._lock:
            for other in self._sessions.values():
                overlap = other.targets & sess.targets
                if not overlap:
                    continue
                if sess.priority.rank > other.priority.rank:
                    # Taken only once this session is on air: if it never gets there, the other keeps them.
                    sess.planned.append((other, overlap))
                    continue
                holder = {"session_id": other.id, "username": other.owner_name, "priority": other.priority.value,
                          "agents": sorted(overlap)}
                raise LiveError(409, f"{', '.join(sorted(overlap))} đang phát trực tiếp bởi {other.owner_name} "
                                     f"(phiên {other.id}, {other.priority.value}) / already live from "
                                     f"{other.owner_name}", holder)
            await asyncio.to_thread(self._insert, sess, zones, ward)
            self._sessions[sess.id] = sess
        sess.tasks.append(asyncio.create_task(self._watch(sess), name=f"live-watch-{sess.id}"))
        if source == "relay":
            sess.tasks.append(asyncio.create_task(self.go_live(sess), name=f"live-go-{sess.id}"))
        return sess

    def _resolve_targets(self, agents: list[str], zones: list[str], ward: str, hide_unknown: bool) -> list[str]:
        with self.db.session() as session:
            found: set[str] = set()
            for agent_id in agents:
                device = session.get(Device, agent_id)
                if device is None or device.ward_id != ward:
                    if hide_unknown:
                        raise NotInReach(f"unknown agent {agent_id}")
                    raise LiveError(422, f"unknown agent {agent_id}")
                if device.enabled:
                    found.add(device.id)
            if zones:
                wanted = set(zones)
                for device in session.scalars(select(Device).where(Device.enabled.is_(True),
                                                                   Device.ward_id == ward)):
                    if wanted & set(device.zones):
                        found.add(device.id)
        if not found:
            raise LiveError(422, "no enabled agent among the chosen agents and zones")
        return sorted(found)

    def _insert(self, sess: ActiveSession, zones: list[str], ward: str) -> None:
        with self.db.session() as session:
            session.add(LiveSession(id=sess.id, ward_id=ward, user_id=sess.owner_id, username=sess.owner_name,
                                    source=sess.source,
                                    relay_url=sess.relay_url, priority=sess.priority.value, title=sess.title,
                                    zones=sorted(set(zones)), targets=sorted(sess.targets), status="starting",
                                    notes=[], recording=f"live/{sess.id}.ogg", recording_bytes=0))

    def _note_takeover(self, new: ActiveSession, old: ActiveSession, agents: set[str], failed: str = "") -> None:
        """Writes a take-over in both records; ``failed`` (why) when the new session never got on air."""
        at = utcnow().isoformat()
        kinds = (("took_over", "taken_over") if not failed else ("takeover_failed", "takeover_failed"))
        with self.db.session() as session:
            for row_id, kind, other in ((new.id, kinds[0], old), (old.id, kinds[1], new)):
                row = session.get(LiveSession, row_id)
                if row is not None:
                    note: dict[str, Any] = {"at": at, "kind": kind, "session": other.id,
                                            "username": other.owner_name, "priority": other.priority.value,
                                            "agents": sorted(agents)}
                    if failed:
                        note["reason"] = failed[:300]
                    row.notes = [*row.notes, note]

    async def _take_over(self, sess: ActiveSession) -> None:
        """At going on air: takes the agents of lower-priority sessions it aims at (planned or not)."""
        async with self._lock:
            sess.planned.clear()
            for other in list(self._sessions.values()):
                overlap = other.targets & sess.targets
                if other is sess or not overlap or other.priority.rank >= sess.priority.rank:
                    continue
                other.targets -= overlap  # their listener tokens stop opening the mount too
                await asyncio.to_thread(self._note_takeover, sess, other, overlap)
                await self._tell(overlap, SpeakerLiveEnd(session_id=other.id))
                log.info("live session %s (%s) takes %s over from %s", sess.id, sess.priority, sorted(overlap),
                         other.id)

    async def go_live(self, sess: ActiveSession) -> None:
        """Starts the source and, once its mount is on Icecast, tells the agents."""
        if await self.start_source(sess):
            await self.announce(sess)

    async def start_source(self, sess: ActiveSession) -> bool:
        """Starts the session's ffmpeg (audio may be fed from now on); False if it cannot."""
        access = self.access()
        if access is None:
            await self.end(sess, "Icecast is not configured", failed=True)
            return False
        parts = urllib.parse.urlsplit(access.source_url)
        ice = (f"icecast://source:{urllib.parse.quote(access.source_password, safe='')}@{parts.hostname}:"
               f"{parts.port}{sess.mount}")
        inputs = microphone_input() if sess.source == "microphone" else relay_input(sess.relay_url or "")
        feeder = SourceFeeder(source_command(inputs, ice, self.directory / f"{sess.id}.ogg"),
                              self.directory / f"{sess.id}.log", takes_stdin=sess.source == "microphone")
        try:
            await feeder.start()
        except OSError as exc:
            await self.end(sess, f"cannot start ffmpeg: {exc}", failed=True)
            return False
        sess.feeder = feeder
        sess.steps["source started"] = time.time()
        sess.tasks.append(asyncio.create_task(self._watch_feeder(sess, feeder), name=f"live-src-{sess.id}"))
        return True

    async def announce(self, sess: ActiveSession) -> None:
        """Waits for the mount on Icecast, then sends ``speaker.live`` to the targets."""
        access = self.access()
        feeder = sess.feeder
        if access is None or feeder is None:
            return
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not await asyncio.to_thread(mount_up, access, sess.mount):
            if sess.ended.is_set():
                return
            if time.monotonic() > deadline or not feeder.running:
                await self.end(sess, f"the stream did not reach Icecast: {feeder.error_tail() or 'no audio'}",
                               failed=True)
                return
            await asyncio.sleep(0.05)
        if sess.ended.is_set():
            return
        sess.steps["mount up"] = time.time()
        sess.live = True
        await self._take_over(sess)
        await asyncio.to_thread(self._mark_live, sess.id)
        url = access.resolved_listen_url() + sess.mount
        for agent_id in sorted(sess.targets):
            order = SpeakerLive(session_id=sess.id, url=url, token=sess.tokens[agent_id], priority=sess.priority,
                                max_duration_ms=self.settings.live_max_seconds * 1000,
                                title=sess.title or "phát trực tiếp")
            await self._tell({agent_id}, order)
        sess.steps["agents told"] = time.time()
        sess.on_air.set()
        log.info("live session %s by %s is on air to %s", sess.id, sess.owner_name, sorted(sess.targets))

    def _mark_live(self, session_id: str) -> None:
        with self.db.session() as session:
            row = session.get(LiveSession, session_id)
            if row is not None:
                row.status, row.live_at = "live", utcnow()

    async def feed(self, sess: ActiveSession, chunk: bytes) -> bool:
        """Audio from the browser; False once the source is gone."""
        sess.last_audio = time.monotonic()
        offset = sess.bytes_in
        sess.bytes_in += len(chunk)
        if sess.trace is None:
            return sess.feeder is not None and await sess.feeder.write(chunk)
        received = time.time()
        ok = sess.feeder is not None and await sess.feeder.write(chunk)
        sess.trace.append((offset, received, time.time()))
        return ok

    async def end(self, sess: ActiveSession, reason: str, failed: bool = False) -> None:
        """Ends a session once: the source stops, agents stop, the record is closed."""
        if sess.ended.is_set():
            return
        sess.ended.set()
        sess.end_reason = reason
        self._sessions.pop(sess.id, None)
        if sess.targets:
            await self._tell(sess.targets, SpeakerLiveEnd(session_id=sess.id))
        if sess.feeder is not None:
            await sess.feeder.close()
        current = asyncio.current_task()
        for task in sess.tasks:
            if task is not current:
                task.cancel()
        await asyncio.to_thread(self._close_record, sess.id, reason, failed)
        if sess.planned and not sess.on_air.is_set():
            # A take-over that never got on air: the other sessions kept their agents; both records say so.
            for other, agents in sess.planned:
                await asyncio.to_thread(self._note_takeover, sess, other, agents, reason)
            sess.planned.clear()
        if sess.trace is not None and self._trace_dir is not None:
            await asyncio.to_thread(self._write_trace, sess)
        log.info("live session %s ended after %.1f s of audio in: %s", sess.id,
                 sess.bytes_in / (PCM_RATE * PCM_SAMPLE_BYTES * PCM_CHANNELS), reason)

    def _write_trace(self, sess: ActiveSession) -> None:
        assert self._trace_dir is not None and sess.trace is not None
        self._trace_dir.mkdir(parents=True, exist_ok=True)
        doc = {"session": sess.id, "steps": sess.steps, "frames": sess.trace}
        (self._trace_dir / f"{sess.id}.json").write_text(json.dumps(doc), encoding="utf-8")

    def _close_record(self, session_id: str, reason: str, failed: bool) -> None:
        path = self.directory / f"{session_id}.ogg"
        size = path.stat().st_size if path.exists() else 0
        with self.db.session() as session:
            row = session.get(LiveSession, session_id)
            if row is None:
                return
            row.status = "failed" if failed else "ended"
            row.ended_at, row.end_reason = utcnow(), reason[:1000]
            row.recording_bytes = size
            if size == 0:
                row.recording = None
                with contextlib.suppress(OSError):
                    path.unlink()

    async def _tell(self, agents: set[str], data: SpeakerLive | SpeakerLiveEnd) -> None:
        # Said now, not written: the session lives only in this process, a late copy would point at nothing.
        for agent_id in sorted(agents):
            try:
                await self.outbox.send_now(data, agent_id, ttl_ms=_COMMAND_TTL_MS)
            except BrokerUnavailable as exc:
                log.warning("live command for %s not sent: %s", agent_id, exc)

    async def _watch(self, sess: ActiveSession) -> None:
        """Ends a session that never connects, falls silent or runs past its longest duration."""
        while not sess.ended.is_set():
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if now - sess.started > self.settings.live_max_seconds:
                await self.end(sess, "longest duration reached")
            elif sess.source == "microphone" and now - sess.last_audio > self.settings.live_idle_seconds \
                    and (sess.connected or now - sess.started > 30):
                await self.end(sess, "no audio from the browser" if sess.connected else "the browser never connected",
                               failed=not sess.live)

    async def _watch_feeder(self, sess: ActiveSession, feeder: SourceFeeder) -> None:
        code = await feeder.wait()
        if not sess.ended.is_set():
            what = "upstream stream lost" if sess.source == "relay" else "encoder stopped"
            await self.end(sess, f"{what} (ffmpeg exit {code}): {feeder.error_tail()}", failed=True)

    # retention ----------------------------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(self.sweep_recordings)
                if removed:
                    log.info("deleted %d live recording(s) past retention", removed)
            except Exception:
                log.exception("live recording retention failed; retrying later")
            await asyncio.sleep(_RETENTION_EVERY_S)

    def sweep_recordings(self) -> int:
        """Deletes recordings of sessions that ended more than ``live_recording_days`` ago."""
        cutoff = utcnow() - timedelta(days=self.settings.live_recording_days)
        removed = 0
        with self.db.session() as session:
            rows = session.scalars(select(LiveSession).where(LiveSession.recording.is_not(None),
                                                             LiveSession.ended_at < cutoff))
            for row in rows:
                with contextlib.suppress(FileNotFoundError):
                    (self.settings.data_dir / str(row.recording)).unlink()
                row.recording, row.recording_deleted_at = None, utcnow()
                removed += 1
        return removed

    def recording_path(self, row: LiveSession) -> Path | None:
        """The recording file of a session, if it is still kept."""
        if row.recording is None:
            return None
        path = self.settings.data_dir / row.recording
        return path if path.is_file() else None
