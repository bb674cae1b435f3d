"""Schedule items on the controller: validate, resolve the programme, refuse conflicts, approve.

Every method blocks (database, speech rendering) and runs in a worker thread. A change says which
agents it touches (:class:`~controller.messaging.events.ScheduleChanged`, once committed), so the window
publisher rebuilds exactly those agents' windows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.speech import SpeechError
from controller.accounts import audit_chain
from controller.accounts.scope import check_zone_scope
from controller.broadcasts.speech import SpeechService
from controller.messaging.events import EventBus, ScheduleChanged
from controller.settings import Settings
from controller.storage.models import Device, MediaFile, ScheduleItem, User, Zone
from devices.protocol import MediaSegment, Priority, RelaySegment, now_ms
from schedules import model as sm
from schedules.conflicts import Conflict, find_conflicts
from schedules.plan import resolve_targets
from schedules.recurrence import occurrences, validate_rrule

log = logging.getLogger(__name__)

#: Statuses of items that still count (for conflicts and, once approved, for playing).
LIVE_STATUSES = ("pending", "approved")
APPROVER_ROLES = frozenset({"admin", "approver"})


class ItemInvalid(ValueError):
    """Input that cannot be accepted; ``field`` names the body field at fault (→ 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ItemConflicts(Exception):
    """Overlaps with items of the same level on the same speakers (→ 409 naming them)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(f"{len(conflicts)} conflict(s)")
        self.conflicts = conflicts


class ItemNotFound(LookupError):
    """No such item (→ 404)."""


class ItemForbidden(PermissionError):
    """The caller may not do this to this item (→ 403)."""


class ItemStateError(ValueError):
    """The item is not in a state that allows this (→ 409)."""


@dataclass(frozen=True, slots=True)
class ItemInput:
    """What an officer sends to create or replace an item (already shape-checked by the API model)."""

    title: str
    priority: Priority
    content: list[dict[str, Any]]
    targets: dict[str, Any]
    start: datetime
    rrule: str | None
    until: datetime | None
    exdates: list[datetime]
    queue: bool


def local_naive(value: datetime, settings: Settings) -> datetime:
    """A wall-clock time in the site's zone: aware values are converted, naive ones are taken as local."""
    if value.tzinfo is not None:
        value = value.astimezone(settings.tz).replace(tzinfo=None)
    return value.replace(microsecond=0)


def known_zones(session: Session) -> set[str]:
    """Zones that exist: defined with a policy, or named by any registered agent."""
    zones = set(session.scalars(select(Zone.id)))
    for device_zones in session.scalars(select(Device.zones)):
        zones.update(device_zones)
    return zones


def agent_zones(session: Session) -> dict[str, list[str]]:
    """Enabled agents and their zones."""
    return {d.id: list(d.zones) for d in session.scalars(select(Device).where(Device.enabled.is_(True)))}


def to_model(row: ScheduleItem) -> sm.ScheduleItem:
    """The pure model of a stored item (what ``schedules`` plans with)."""
    return sm.ScheduleItem.model_validate({
        "id": row.id, "revision": row.revision, "title": row.title, "priority": row.priority,
        "segments": row.segments, "targets": row.targets, "start": datetime.fromisoformat(row.start_local),
        "rrule": row.rrule, "until": datetime.fromisoformat(row.until_local) if row.until_local else None,
        "exdates": [datetime.fromisoformat(x) for x in row.exdates], "queue": row.queue,
        "created_ms": row.saved_ms,
    })


def check_item_scope(user: User, targets: Mapping[str, Any]) -> None:
    """:class:`~controller.accounts.scope.OutOfScope` when an item's targets reach beyond a zone-limited user's
    zones."""
    check_zone_scope(user, bool(targets.get("all")), list(targets.get("zones") or []),
                     list(targets.get("agents") or []))


class ScheduleService:
    """Creates, changes, approves and cancels items; says which agents each change touches.

    A user limited to some zones may only create, change, decide or cancel items within them
    (:class:`~controller.accounts.scope.OutOfScope` otherwise), whether they ask through the API or the console.
    """

    def __init__(self, settings: Settings, speech: SpeechService, events: EventBus) -> None:
        self.settings = settings
        self.speech = speech
        self.events = events

    # create / replace / cancel -----------------------------------------------------------------------

    def create(self, session: Session, body: ItemInput, user: User) -> ScheduleItem:
        """Validates, renders and stores a new item; pending if the site requires approval."""
        check_item_scope(user, body.targets)
        row = ScheduleItem(id=uuid.uuid4().hex, revision=0, created_by=user.id)
        self._fill(session, row, body, user)
        session.add(row)
        audit_chain.record(session, user, "schedule.create", row.id,
                           {"title": row.title, "priority": row.priority, "status": row.status})
        session.flush()
        self._changed(session, row, set())
        return row

    def replace(self, session: Session, item_id: str, body: ItemInput, user: User) -> ScheduleItem:
        """A new revision of an item (it goes back to approval if the site requires it)."""
        check_item_scope(user, body.targets)
        row = self.get(session, item_id)
        if row.status in ("cancelled",):
            raise ItemStateError(f"item {item_id} is cancelled")
        before = self._targets_now(session, row)
        row.revision += 1
        self._fill(session, row, body, user)
        audit_chain.record(session, user, "schedule.update", row.id,
                           {"revision": row.revision, "title": row.title, "status": row.status})
        session.flush()
        self._changed(session, row, before)
        return row

    def cancel(self, session: Session, item_id: str, user: User) -> ScheduleItem:
        """Withdraws an item from every window; its history stays."""
        row = self.get(session, item_id)
        check_item_scope(user, row.targets)
        before = self._targets_now(session, row)
        row.status = "cancelled"
        audit_chain.record(session, user, "schedule.cancel", row.id, {"title": row.title})
        session.flush()
        self._changed(session, row, before)
        return row

    def decide(self, session: Session, item_id: str, user: User, approve: bool, reason: str = "") -> ScheduleItem:
        """An approver approves or rejects a pending item (never their own)."""
        row = self.get(session, item_id)
        check_item_scope(user, row.targets)
        if not user.role_set & APPROVER_ROLES:
            raise ItemForbidden("only an approver or an admin may approve or reject")
        if row.status != "pending":
            raise ItemStateError(f"item {item_id} is {row.status}, not pending")
        if row.updated_by == user.id:
            raise ItemForbidden("an item must be approved by someone other than the person who wrote it")
        row.status = "approved" if approve else "rejected"
        row.rejection_reason = None if approve else reason
        row.decided_by, row.decided_at = user.id, datetime.now().astimezone()
        audit_chain.record(session, user, "schedule.approve" if approve else "schedule.reject", row.id,
                           {"revision": row.revision, "reason": reason} if reason else {"revision": row.revision})
        session.flush()
        self._changed(session, row, set())
        return row

    def get(self, session: Session, item_id: str) -> ScheduleItem:
        """The item, or ItemNotFound."""
        row = session.get(ScheduleItem, item_id)
        if row is None:
            raise ItemNotFound(item_id)
        return row

    def next_starts(self, row: ScheduleItem, count: int = 5) -> list[int]:
        """The next few start times (ms) of an item from now, for people to check the rule means what they meant."""
        try:
            item = to_model(row)
        except (ValidationError, sm.ScheduleError):
            return []
        now = now_ms()
        starts: list[int] = []
        horizon = now
        for days in (2, 14, 90, 400):
            horizon = now + days * 86_400_000
            starts = [s for s in occurrences(item, now, horizon, self.settings.tz) if s >= now]
            if len(starts) >= count:
                break
        return starts[:count]

    # internals --------------------------------------------------------------------------------------

    def _fill(self, session: Session, row: ScheduleItem, body: ItemInput, user: User) -> None:
        start = local_naive(body.start, self.settings)
        until = local_naive(body.until, self.settings) if body.until else None
        exdates = [local_naive(x, self.settings) for x in body.exdates]
        rrule = None
        if body.rrule:
            try:
                rrule = validate_rrule(body.rrule)
            except sm.ScheduleError as exc:
                raise ItemInvalid("rrule", str(exc)) from None
        self._check_times(start, until, rrule)
        self._check_targets(session, body.targets)
        segments = self._resolve_content(session, body.content)
        row.title = body.title
        row.priority = body.priority.value
        row.content = body.content
        row.segments = segments
        row.targets = body.targets
        row.start_local = start.isoformat()
        row.rrule = rrule
        row.until_local = until.isoformat() if until else None
        row.exdates = [x.isoformat() for x in exdates]
        row.queue = body.queue
        row.saved_ms = now_ms()
        row.updated_by = user.id
        row.status = "pending" if self.settings.require_approval else "approved"
        row.rejection_reason = None
        row.decided_by = None if self.settings.require_approval else user.id
        row.decided_at = None
        try:
            candidate = to_model(row)
        except sm.ScheduleError as exc:
            raise ItemInvalid(exc.field, str(exc)) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ItemInvalid(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) from None
        if not body.queue:
            conflicts = self._conflicts(session, candidate)
            if conflicts:
                raise ItemConflicts(conflicts)

    def _check_times(self, start: datetime, until: datetime | None, rrule: str | None) -> None:
        now_local = datetime.now(self.settings.tz).replace(tzinfo=None)
        slack = timedelta(minutes=1)
        if until is not None and until < start:
            raise ItemInvalid("until", "until is before start")
        if rrule is None and start < now_local - slack:
            raise ItemInvalid("start", f"start {start.isoformat()} ({self.settings.timezone}) is in the past")
        if until is not None and until < now_local - slack:
            raise ItemInvalid("until", f"until {until.isoformat()} ({self.settings.timezone}) is in the past")
        if start > now_local + timedelta(days=3 * 366):
            raise ItemInvalid("start", "start is more than three years ahead")

    def _check_targets(self, session: Session, targets: Mapping[str, Any]) -> None:
        zones = known_zones(session)
        unknown_zones = [z for z in targets.get("zones", []) if z not in zones]
        if unknown_zones:
            raise ItemInvalid("targets", f"unknown zone(s): {', '.join(unknown_zones)}")
        agents = {d for d in session.scalars(select(Device.id).where(Device.enabled.is_(True)))}
        unknown_agents = [a for a in targets.get("agents", []) if a not in agents]
        if unknown_agents:
            raise ItemInvalid("targets", f"unknown agent(s): {', '.join(unknown_agents)}")

    def _resolve_content(self, session: Session, content: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        segments: list[dict[str, Any]] = []
        for index, part in enumerate(content):
            kind = part["kind"]
            if kind == "tts":
                try:
                    _speech, stored = self.speech.render(part["text"])
                except SpeechError as exc:
                    raise ItemInvalid(f"content.{index}.text", f"speech could not be rendered: {exc}") from None
                seg: MediaSegment | RelaySegment = MediaSegment(
                    sha256=stored.sha256, size=stored.size, duration_ms=stored.duration_ms, mime=stored.mime,
                    title=part.get("title", ""))
            elif kind == "media":
                media = session.get(MediaFile, part["sha256"])
                if media is None:
                    raise ItemInvalid(f"content.{index}.sha256", f"no stored recording {part['sha256']}")
                seg = MediaSegment(sha256=media.sha256, size=media.size, duration_ms=media.duration_ms,
                                   mime=media.mime, title=part.get("title", ""))
            else:
                seg = RelaySegment(url=part["url"], duration_ms=int(part["duration_s"] * 1000),
                                   title=part.get("title", ""))
            segments.append(seg.model_dump(mode="json"))
        return segments

    def _conflicts(self, session: Session, candidate: sm.ScheduleItem) -> list[Conflict]:
        # Items queued behind others yield: they never make a slot unavailable.
        existing = [to_model(r) for r in session.scalars(
            select(ScheduleItem).where(ScheduleItem.status.in_(LIVE_STATUSES), ScheduleItem.id != candidate.id,
                                       ScheduleItem.queue.is_(False)))]
        now = now_ms()
        horizon = now + self.settings.conflict_horizon_days * 86_400_000
        return find_conflicts(candidate, existing, agent_zones(session), now, horizon, self.settings.tz)

    def _targets_now(self, session: Session, row: ScheduleItem) -> set[str]:
        try:
            return set(resolve_targets(sm.Targets.model_validate(row.targets), agent_zones(session)))
        except (ValidationError, sm.ScheduleError):
            return set()

    def _changed(self, session: Session, row: ScheduleItem, before: set[str]) -> None:
        # Told once the change is committed: only then may the publisher read it back.
        self.events.publish(ScheduleChanged(frozenset(before | self._targets_now(session, row))), session)
