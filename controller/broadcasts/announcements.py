"""Announcements: accept (validate targets), render speech in the background, sign one command per agent.

The API only records the announcement and returns 202; a worker renders speech off the event loop,
stores it under its hash, then writes one delivery per target and the signed ``speaker.play`` in one
transaction, the command in the outbox (controller/messaging/outbox.py publishes it once committed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.speech import SpeechError
from controller.accounts import audit_chain
from controller.accounts.reach import NotInReach
from controller.broadcasts.speech import SpeechService, StoredAudio
from controller.broadcasts.wards import claim_media, media_in_wards, sign_fan_out
from controller.messaging.events import AnnouncementChanged, EventBus
from controller.messaging.outbox import Outbox
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import FIRST_WARD, Announcement, Device, MediaFile, User, Zone
from devices.protocol import ATTACHMENT_MAX_BYTES, Priority, SpeakerPlay, now_ms

log = logging.getLogger(__name__)

ALL = "all"
#: How a stored target names a zone rather than an agent (the envelope's ``to`` spells zones the same way).
ZONE_PREFIX = "zone:"
#: How far in the past a requested start may be before it is refused rather than treated as "now".
PAST_TOLERANCE_MS = 60_000
MAX_AHEAD_MS = 366 * 24 * 3600 * 1000


class InvalidAnnouncement(ValueError):
    """Input that cannot be accepted; ``field`` names the offending body field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _unknown(field: str, message: str, hide: bool) -> Exception:
    """An unknown name: 422 as ever, or — for a caller who cannot see every ward — the 404 a name of another
    ward gets, in the same words, so the answer tells nothing about the other wards."""
    return NotInReach(message) if hide else InvalidAnnouncement(field, message)


def ward_agent_zones(session: Session, ward: str) -> dict[str, list[str]]:
    """The ward's enabled agents and their zones."""
    return {d.id: list(d.zones) for d in session.scalars(
        select(Device).where(Device.enabled.is_(True), Device.ward_id == ward))}


def ward_zones(session: Session, ward: str) -> set[str]:
    """Zones of the ward: defined with a policy there, or named by one of its agents."""
    zones = set(session.scalars(select(Zone.id).where(Zone.ward_id == ward)))
    for device_zones in session.scalars(select(Device.zones).where(Device.ward_id == ward)):
        zones.update(device_zones)
    return zones


def normalize_text(text: str) -> str:
    """NFC, trimmed, with control characters other than newlines removed."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


@dataclass(frozen=True, slots=True)
class AcceptedAnnouncement:
    """What the API returns after accepting."""

    id: str
    targets: list[str]


def split_targets(targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """Stored targets as (zone names, agent ids), each without repeats, in the order given."""
    unique = list(dict.fromkeys(targets))
    return ([t.removeprefix(ZONE_PREFIX) for t in unique if t.startswith(ZONE_PREFIX)],
            [t for t in unique if not t.startswith(ZONE_PREFIX)])


def _title(text: str) -> str:
    """What signs show while the announcement plays: its text on one line, cut at a word near 200 characters."""
    line = " ".join(text.split())
    if len(line) <= 200:
        return line
    cut = line[:199].rsplit(" ", 1)[0]
    return cut + "…"


class AnnouncementService:
    """Validation, persistence and the render/dispatch worker."""

    def __init__(self, settings: Settings, db: Database, speech: SpeechService, outbox: Outbox, *,
                 events: EventBus) -> None:
        self.settings = settings
        self.db = db
        self.speech = speech
        self.outbox = outbox
        # Emergency first: a long normal bulletin waiting to be rendered must not hold up a fire alarm.
        self._queue: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        #: Where an announcement accepted or a status moved is told (the console's pages look again).
        self.events = events
        self._seq = itertools.count()

    # accept ---------------------------------------------------------------------------------------

    async def submit(self, text: str, targets: Sequence[str], priority: Priority, start_at: datetime | None,
                     user_id: int | None, recording: str | None = None, *, ward: str = FIRST_WARD,
                     hide_unknown: bool = False) -> AcceptedAnnouncement:
        """Validates and stores off the event loop, then queues the rendering on it."""
        accepted = await asyncio.to_thread(self.accept, text, targets, priority, start_at, user_id, recording,
                                           ward=ward, hide_unknown=hide_unknown)
        self._enqueue(accepted.id, priority)  # asyncio queues are not thread-safe: only touched on the loop
        return accepted

    def accept(self, text: str, targets: Sequence[str], priority: Priority, start_at: datetime | None,
               user_id: int | None, recording: str | None = None, *, ward: str = FIRST_WARD,
               hide_unknown: bool = False) -> AcceptedAnnouncement:
        """Validates and stores a new announcement of ``ward`` (blocking); raises InvalidAnnouncement with a
        clear message.

        With ``recording`` (a stored recording's sha256) that recording is played and ``text`` only
        describes it; otherwise ``text`` is read aloud. Targets and the recording must be the ward's; with
        ``hide_unknown`` (a caller who cannot see every ward) a name unknown there is
        :class:`~controller.accounts.reach.NotInReach` rather than invalid. The caller queues it:
        :meth:`submit` does both.
        """
        text, spoken, requested_ms = self.check_input(text, recording, start_at)
        with self.db.session() as session:
            if recording is not None and (session.get(MediaFile, recording) is None
                                          or not media_in_wards(session, recording, [ward])):
                raise _unknown("recording", f"no stored recording {recording}", hide_unknown)
            agent_ids = self._resolve_targets(session, targets, ward, hide_unknown)
            ann = self.store(session, text, spoken, targets, priority, requested_ms, user_id, recording, ward)
        return AcceptedAnnouncement(ann.id, agent_ids)

    def check_input(self, text: str, recording: str | None,
                    start_at: datetime | None) -> tuple[str, str | None, int | None]:
        """The text as stored, the text as spoken (None for a recording) and the requested start (ms), or
        :class:`InvalidAnnouncement`."""
        text = normalize_text(text)
        if len(text) > self.settings.text_max_chars:
            raise InvalidAnnouncement(
                "text", f"text is {len(text)} characters; the limit is {self.settings.text_max_chars}")
        spoken: str | None = None
        if recording is None:
            if not text:
                raise InvalidAnnouncement("text", "text is empty")
            spoken = self.speech.normalize(text)
            if not spoken.strip():
                raise InvalidAnnouncement("text", "text has nothing to read aloud (only symbols or markup)")
        requested_ms: int | None = None
        if start_at is not None:
            requested_ms = int(start_at.timestamp() * 1000)
            now = now_ms()
            if requested_ms < now - PAST_TOLERANCE_MS:
                raise InvalidAnnouncement("start_at", f"start_at {start_at.isoformat()} is in the past")
            if requested_ms > now + MAX_AHEAD_MS:
                raise InvalidAnnouncement("start_at", "start_at is more than a year ahead")
        return text, spoken, requested_ms

    def store(self, session: Session, text: str, spoken: str | None, targets: Sequence[str], priority: Priority,
              requested_ms: int | None, user_id: int | None, recording: str | None, ward: str, *,
              parent_id: str | None = None, held: bool = False) -> Announcement:
        """Writes a checked announcement of ``ward``: ``rendering`` (the caller queues it once committed), or
        ``pending`` when ``held`` for the ward's approver."""
        # A recording is known from the start: the worker sends it as it is instead of rendering speech.
        ann = Announcement(id=uuid.uuid4().hex, text=text, spoken_text=spoken, priority=priority.value,
                           targets=list(targets), media_sha256=recording, requested_start_ms=requested_ms,
                           status="pending" if held else "rendering", created_by=user_id, ward_id=ward,
                           parent_id=parent_id)
        session.add(ann)
        creator = session.get(User, user_id) if user_id is not None else None
        detail = {"text": text[:500], "targets": list(targets), "priority": priority.value, "recording": recording}
        if parent_id is not None:
            detail |= {"from_above": parent_id, "status": ann.status}
        audit_chain.record(session, creator, "announcement.create", ann.id, detail, unit=ward)
        self.events.publish(AnnouncementChanged(ann.id), session)  # the console's lists show it at once
        return ann

    def agents_for(self, session: Session, targets: Sequence[str], ward: str) -> list[str]:
        """Agent ids of ``ward`` the targets reach (:class:`InvalidAnnouncement` naming what is not there)."""
        return self._resolve_targets(session, targets, ward)

    def enqueue(self, ann_id: str, priority: Priority) -> None:
        """Queues a committed ``rendering`` announcement for the worker (on the event loop only)."""
        self._enqueue(ann_id, priority)

    def _resolve_targets(self, session: Session, targets: Sequence[str], ward: str,
                         hide_unknown: bool = False) -> list[str]:
        """Agent ids of ``ward`` reached by ``"all"``, agent ids and ``"zone:{name}"`` entries, in a stable
        order; a name of another ward is unknown here."""
        if not targets:
            raise InvalidAnnouncement("targets", "targets is empty; give zones, agent ids or \"all\"")
        fleet = ward_agent_zones(session, ward)
        if ALL in targets:
            if len(targets) > 1:
                raise InvalidAnnouncement("targets", "\"all\" cannot be combined with zones or agent ids")
            if not fleet:
                raise InvalidAnnouncement("targets", "no agents are registered")
            return sorted(fleet)
        zones, agents = split_targets(targets)
        existing = ward_zones(session, ward) if zones else set()
        unknown_zones = [z for z in zones if z not in existing]
        if unknown_zones:
            raise _unknown("targets", f"unknown zone(s): {', '.join(unknown_zones)}", hide_unknown)
        unknown = [a for a in agents if a not in fleet]
        if unknown:
            raise _unknown("targets", f"unknown agent(s): {', '.join(unknown)}", hide_unknown)
        chosen = dict.fromkeys(agents)
        for agent_id in sorted(fleet):
            if agent_id not in chosen and any(z in fleet[agent_id] for z in zones):
                chosen[agent_id] = None
        if not chosen:
            raise InvalidAnnouncement("targets", f"no enabled agent is in zone(s) {', '.join(zones)}")
        return list(chosen)

    # render and dispatch (the worker) ---------------------------------------------------------------

    async def requeue_unfinished(self) -> int:
        """Announcements a previous run accepted but did not finish rendering go back in the queue."""
        def unfinished() -> list[tuple[str, str]]:
            with self.db.session() as session:
                rows = session.execute(select(Announcement.id, Announcement.priority)
                                       .where(Announcement.status == "rendering").order_by(Announcement.created_at))
                return [(ann_id, prio) for ann_id, prio in rows]

        rows = await asyncio.to_thread(unfinished)
        for ann_id, prio in rows:
            self._enqueue(ann_id, Priority(prio))
        return len(rows)

    def _enqueue(self, ann_id: str, priority: Priority) -> None:
        self._queue.put_nowait((-priority.rank, next(self._seq), ann_id))

    async def run(self) -> None:
        """Renders and dispatches announcements one after another."""
        while True:
            _, _, ann_id = await self._queue.get()
            try:
                await asyncio.to_thread(self._render_and_sign, ann_id)
            except Exception:
                log.exception("announcement %s could not be processed", ann_id)
                await asyncio.to_thread(self._fail, ann_id, "internal error while rendering")
                self.events.publish(AnnouncementChanged(ann_id))
                continue
            self.events.publish(AnnouncementChanged(ann_id))  # rendered and signed, or failed: its status moved

    def _fail(self, ann_id: str, reason: str) -> None:
        with self.db.session() as session:
            ann = session.get(Announcement, ann_id)
            if ann is not None:
                ann.status, ann.error = "failed", reason

    def _render_and_sign(self, ann_id: str) -> int:
        """Renders (or takes the recording) and writes the signed commands with the deliveries (blocking);
        the outbox publishes them once this commits. Returns how many commands."""
        with self.db.session() as session:
            ann = session.get(Announcement, ann_id)
            if ann is None or ann.status != "rendering":
                return 0
            text, targets, priority = ann.text, list(ann.targets), Priority(ann.priority)
            requested, ward = ann.requested_start_ms, ann.ward_id
            recording = session.get(MediaFile, ann.media_sha256) if ann.media_sha256 else None
            if ann.media_sha256 and recording is None:
                ann.status, ann.error = "failed", f"the recording {ann.media_sha256} is no longer stored"
                return 0
        if recording is not None:
            speech = StoredAudio(sha256=recording.sha256, size=recording.size, duration_ms=recording.duration_ms,
                                 mime=recording.mime, source=recording.source, loudness_lufs=recording.loudness_lufs)
            how = "recording"
        else:
            try:
                rendered, speech = self.speech.render(text)
            except SpeechError as exc:
                log.error("announcement %s: speech failed: %s", ann_id, exc)
                self._fail(ann_id, f"speech rendering failed: {exc}")
                return 0
            how = f"speech by {speech.source}{' (cached)' if rendered.cached else ''}"
        attachment: bytes | None = None
        standby = recording is not None and recording.standby  # every agent has it already
        if priority is Priority.EMERGENCY and speech.size <= ATTACHMENT_MAX_BYTES and not standby:
            # The alarm carries its audio: no speaker waits on a download, the broker alone fans it out.
            path = self.speech.media.path_for(speech.sha256)
            attachment = path.read_bytes() if path is not None else None
        # An alarm waits only as long as the fleet needs to take it in; everything else leaves time to download.
        lead = self.settings.emergency_lead_ms if priority is Priority.EMERGENCY else self.settings.play_lead_ms
        now = now_ms()
        # A start the speakers cannot all make in time moves to the first one they can.
        start = requested if requested is not None and requested >= now + lead // 2 else now + lead
        ttl = start - now + speech.duration_ms + self.settings.command_ttl_ms
        with self.db.session() as session:
            ann = session.get(Announcement, ann_id)
            assert ann is not None
            try:
                agent_ids = self._resolve_targets(session, targets, ward)
            except InvalidAnnouncement as exc:  # every target was removed while rendering
                ann.status, ann.error = "failed", str(exc)
                return 0
            ann.media_sha256, ann.start_ms, ann.status = speech.sha256, start, "sent"
            claim_media(session, speech.sha256, [ward])  # the ward's staff may hear what it sent
            ann.engine = None if recording is not None else speech.source  # a recording was spoken by no engine
            order = SpeakerPlay(announcement_id=ann_id, sha256=speech.sha256, size=speech.size,
                                duration_ms=speech.duration_ms, mime=speech.mime, priority=priority, start_at=start,
                                title=_title(text))
            commands = self._sign(session, ann_id, order, ttl, targets, agent_ids, attachment, ward)
            audit_chain.record(session, session.get(User, ann.created_by) if ann.created_by is not None else None,
                               "announcement.send", ann_id, {"agents": agent_ids, "start_ms": start}, unit=ward)
        log.info("announcement %s: %.1f s of %s, %d target(s) in %d command(s)%s, start %d", ann_id,
                 speech.duration_ms / 1000, how, len(agent_ids), commands,
                 " with the audio attached" if attachment else "", start)
        return commands

    def _sign(self, session: Session, ann_id: str, order: SpeakerPlay, ttl: int, targets: Sequence[str],
              agent_ids: Sequence[str], attachment: bytes | None, ward: str) -> int:
        """The signed commands and deliveries (:func:`~controller.broadcasts.wards.sign_fan_out` chooses the
        group topics); returns how many commands."""
        return sign_fan_out(self.outbox, session, ann_id, order, ttl, targets, agent_ids, attachment, ward)
