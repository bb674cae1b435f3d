"""Schedule items on the controller: validate, resolve the programme, refuse conflicts, approve.

Every method blocks (database, speech rendering) and runs in a worker thread. A change says which
agents it touches (:class:`~controller.messaging.events.ScheduleChanged`, once committed), so the window
publisher rebuilds exactly those agents' windows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.speech import SpeechError
from controller.accounts import audit_chain
from controller.accounts.reach import NotInReach, check_ward, ward_for_new, wards_of
from controller.accounts.scope import check_zone_scope
from controller.broadcasts.from_above import held_for_ward
from controller.broadcasts.speech import SpeechService
from controller.broadcasts.wards import claim_media
from controller.messaging.events import EventBus, ScheduleChanged
from controller.settings import Settings
from controller.storage.models import FIRST_WARD, Device, MediaFile, MediaWard, ScheduleItem, User, Zone
from devices.protocol import MediaSegment, Priority, RelaySegment, now_ms
from schedules import model as sm
from schedules.conflicts import Conflict, find_conflicts
from schedules.plan import resolve_targets
from schedules.recurrence import occurrences, validate_rrule

log = logging.getLogger(__name__)

#: Statuses of items that still count (for conflicts and, once approved, for playing).
LIVE_STATUSES = ("pending", "approved")
APPROVER_ROLES = frozenset({"admin", "approver"})
#: Roles that write, change and cancel items (in the item's ward); approving needs an approver there.
WRITER_ROLES = frozenset({"officer", "approver"})


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
    #: The ward the item belongs to; None: the caller's only ward (a new item) or the item's own (a change).
    ward: str | None = None


def local_naive(value: datetime, settings: Settings) -> datetime:
    """A wall-clock time in the site's zone: aware values are converted, naive ones are taken as local."""
    if value.tzinfo is not None:
        value = value.astimezone(settings.tz).replace(tzinfo=None)
    return value.replace(microsecond=0)


def known_zones(session: Session, wards: Collection[str] | None = None) -> set[str]:
    """Zones that exist: defined with a policy, or named by any registered agent (of ``wards``; None: all)."""
    zone_ids = select(Zone.id)
    device_zones = select(Device.zones)
    if wards is not None:
        zone_ids = zone_ids.where(Zone.ward_id.in_(list(wards)))
        device_zones = device_zones.where(Device.ward_id.in_(list(wards)))
    zones = set(session.scalars(zone_ids))
    for named in session.scalars(device_zones):
        zones.update(named)
    return zones


def agent_zones(session: Session, wards: Collection[str] | None = None) -> dict[str, list[str]]:
    """Enabled agents and their zones (of ``wards``; None: every ward)."""
    query = select(Device).where(Device.enabled.is_(True))
    if wards is not None:
        query = query.where(Device.ward_id.in_(list(wards)))
    return {d.id: list(d.zones) for d in session.scalars(query)}


def _zone_wards(session: Session, names: Collection[str]) -> dict[str, set[str]]:
    """The wards each of these zone names lives in (a defined zone's ward, and the wards of agents naming it)."""
    found: dict[str, set[str]] = {}
    for zone_id, ward in session.execute(select(Zone.id, Zone.ward_id).where(Zone.id.in_(list(names)))):
        found.setdefault(zone_id, set()).add(ward)
    wanted = set(names)
    # Zones an agent merely names live in its zone list (JSON): read the pairs, not the devices.
    for ward, device_zones in session.execute(select(Device.ward_id, Device.zones)):
        for zone_id in wanted.intersection(device_zones):
            found.setdefault(zone_id, set()).add(ward)
    return found


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

    Every item belongs to one ward: its targets, its recordings, its conflicts and the quiet hours it meets are
    that ward's. A caller sees only the items of their wards (another ward's item is "not found", as an unknown
    id), changes them with the officer's or approver's role held in the item's ward and decides them as that
    ward's approver (:class:`~controller.accounts.reach.OutsideRole` otherwise). A user limited to some zones
    may only create, change, decide or cancel items within them (:class:`~controller.accounts.scope.OutOfScope`
    otherwise), whether they ask through the API or the console.
    """

    def __init__(self, settings: Settings, speech: SpeechService, events: EventBus) -> None:
        self.settings = settings
        self.speech = speech
        self.events = events

    # create / replace / cancel -----------------------------------------------------------------------

    def create(self, session: Session, body: ItemInput, user: User) -> ScheduleItem:
        """Validates, renders and stores a new item; pending if the site requires approval."""
        ward = ward_for_new(session, user, body.ward, WRITER_ROLES)
        check_item_scope(user, body.targets)
        row = ScheduleItem(id=uuid.uuid4().hex, revision=0, created_by=user.id, ward_id=ward)
        self._fill(session, row, body, user)
        session.add(row)
        audit_chain.record(session, user, "schedule.create", row.id,
                           {"title": row.title, "priority": row.priority, "status": row.status}, unit=ward)
        session.flush()
        self._changed(session, row, set())
        return row

    def replace(self, session: Session, item_id: str, body: ItemInput, user: User) -> ScheduleItem:
        """A new revision of an item (it goes back to approval if the site requires it)."""
        row = self.get(session, item_id, user)
        check_ward(session, user, row.ward_id, WRITER_ROLES, str(item_id))
        self._not_from_above(row)
        if body.ward is not None and body.ward != row.ward_id:
            check_ward(session, user, body.ward, WRITER_ROLES, f"ward {body.ward} not found")
            raise ItemInvalid("ward", f"an item stays in its ward ({row.ward_id}); cancel it and create it in "
                                      f"{body.ward}")
        check_item_scope(user, body.targets)
        if row.status in ("cancelled",):
            raise ItemStateError(f"item {item_id} is cancelled")
        return self.revise(session, row, body, user)

    def revise(self, session: Session, row: ScheduleItem, body: ItemInput, user: User) -> ScheduleItem:
        """Writes a new revision of ``row`` (already checked: its ward, the caller's roles and zones)."""
        before = self._targets_now(session, row)
        row.revision += 1
        self._fill(session, row, body, user)
        audit_chain.record(session, user, "schedule.update", row.id,
                           {"revision": row.revision, "title": row.title, "status": row.status}, unit=row.ward_id)
        session.flush()
        self._changed(session, row, before)
        return row

    def cancel(self, session: Session, item_id: str, user: User) -> ScheduleItem:
        """Withdraws an item from every window; its history stays."""
        row = self.get(session, item_id, user)
        check_ward(session, user, row.ward_id, WRITER_ROLES, str(item_id))
        self._not_from_above(row)
        check_item_scope(user, row.targets)
        return self.withdraw(session, row, user)

    def withdraw(self, session: Session, row: ScheduleItem, user: User) -> ScheduleItem:
        """Cancels ``row`` (already checked): it leaves every window."""
        before = self._targets_now(session, row)
        row.status = "cancelled"
        audit_chain.record(session, user, "schedule.cancel", row.id, {"title": row.title}, unit=row.ward_id)
        session.flush()
        self._changed(session, row, before)
        return row

    def add_child(self, session: Session, parent_id: str, ward: str, body: ItemInput, user: User) -> ScheduleItem:
        """A ward's part of a city item (already checked: the ward is in the sender's reach, the targets are the
        ward's). It starts pending only where the rules say so (:meth:`_starts_pending`)."""
        row = ScheduleItem(id=uuid.uuid4().hex, revision=0, created_by=user.id, ward_id=ward, parent_id=parent_id)
        self._fill(session, row, body, user)
        session.add(row)
        audit_chain.record(session, user, "schedule.create", row.id,
                           {"title": row.title, "priority": row.priority, "status": row.status,
                            "from_above": parent_id}, unit=ward)
        session.flush()
        self._changed(session, row, set())
        return row

    @staticmethod
    def _not_from_above(row: ScheduleItem) -> None:
        if row.parent_id is not None:
            raise ItemForbidden(f"item {row.id} comes from above (a city item): it is changed or cancelled by "
                                f"the city, through /api/v1/schedule/city-items/{row.parent_id}; a ward may "
                                "approve or reject it when it approves the city's items")

    def decide(self, session: Session, item_id: str, user: User, approve: bool, reason: str = "") -> ScheduleItem:
        """An approver approves or rejects a pending item (never their own)."""
        row = self.get(session, item_id, user)
        if not user.role_set & APPROVER_ROLES:
            raise ItemForbidden("only an approver or an admin may approve or reject")
        check_ward(session, user, row.ward_id, APPROVER_ROLES, str(item_id))
        check_item_scope(user, row.targets)
        if row.status != "pending":
            raise ItemStateError(f"item {item_id} is {row.status}, not pending")
        if row.updated_by == user.id:
            raise ItemForbidden("an item must be approved by someone other than the person who wrote it")
        row.status = "approved" if approve else "rejected"
        row.rejection_reason = None if approve else reason
        row.decided_by, row.decided_at = user.id, datetime.now().astimezone()
        audit_chain.record(session, user, "schedule.approve" if approve else "schedule.reject", row.id,
                           {"revision": row.revision, "reason": reason} if reason else {"revision": row.revision},
                           unit=row.ward_id)
        session.flush()
        self._changed(session, row, set())
        return row

    def get(self, session: Session, item_id: str, user: User | None = None) -> ScheduleItem:
        """The item, or ItemNotFound; with ``user``, only an item of a ward they can see (another ward's item is
        not found, in the same words as an id that never existed)."""
        query = select(ScheduleItem).where(ScheduleItem.id == item_id)
        if user is not None:
            query = query.where(ScheduleItem.ward_id.in_(list(wards_of(session, user))))
        row = session.scalars(query).first()
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
        self._check_targets(session, row.ward_id, body.targets, user)
        segments = self._resolve_content(session, row.ward_id, body.content, user, row.parent_id is not None)
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
        pending = self._starts_pending(session, row, body.priority)
        row.status = "pending" if pending else "approved"
        row.rejection_reason = None
        row.decided_by = None if pending else user.id
        row.decided_at = None
        try:
            candidate = to_model(row)
        except sm.ScheduleError as exc:
            raise ItemInvalid(exc.field, str(exc)) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ItemInvalid(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) from None
        if not body.queue:
            conflicts = self._conflicts(session, row.ward_id, candidate)
            if conflicts:
                raise ItemConflicts(conflicts)

    def _starts_pending(self, session: Session, row: ScheduleItem, priority: Priority) -> bool:
        """Whether a new revision waits for approval: the site's rule; for a city item's part, an emergency never
        waits, and normal priority also waits in a ward that approves the city's items itself."""
        if row.parent_id is None:
            return self.settings.require_approval
        if priority is Priority.EMERGENCY:
            return False
        return held_for_ward(session, row.ward_id, priority) or self.settings.require_approval

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

    def _check_targets(self, session: Session, ward: str, targets: Mapping[str, Any], user: User) -> None:
        """Zones and agents named must be the item's ward's: one of a ward the caller cannot see is unknown
        (404, in the words an unknown name gets); one of another ward they see is refused (422)."""
        zones = known_zones(session, [ward])
        unknown_zones = [z for z in targets.get("zones", []) if z not in zones]
        if unknown_zones:
            elsewhere = _zone_wards(session, unknown_zones)
            self._refuse_foreign(session, ward, user, "zone", unknown_zones,
                                 {z: elsewhere.get(z, set()) for z in unknown_zones})
        agents = set(session.scalars(select(Device.id).where(Device.enabled.is_(True), Device.ward_id == ward)))
        unknown_agents = [a for a in targets.get("agents", []) if a not in agents]
        if unknown_agents:
            homes = {agent: home for agent, home in session.execute(select(Device.id, Device.ward_id).where(
                Device.enabled.is_(True), Device.id.in_(unknown_agents)))}
            self._refuse_foreign(session, ward, user, "agent", unknown_agents,
                                 {a: {homes[a]} if a in homes else set() for a in unknown_agents})

    @staticmethod
    def _refuse_foreign(session: Session, ward: str, user: User, kind: str, names: list[str],
                        homes: Mapping[str, set[str]]) -> None:
        """Refuses names that are not in ``ward``: 404 when any lives only in wards the caller cannot see (so
        nothing about them leaks), 422 naming the ward when the caller sees where it is, 422 when unknown."""
        visible = wards_of(session, user)
        message = f"unknown {kind}(s): {', '.join(names)}"
        if any(homes[n] and not homes[n] & visible for n in names):
            raise NotInReach(message)
        foreign = [n for n in names if homes[n]]
        if foreign:
            where = ", ".join(f"{n} (ward {', '.join(sorted(homes[n]))})" for n in foreign)
            raise ItemInvalid("targets", f"{kind}(s) of another ward: {where}; an item of ward {ward} plays "
                                         f"only on that ward's speakers")
        raise ItemInvalid("targets", message)

    def _resolve_content(self, session: Session, ward: str, content: Sequence[Mapping[str, Any]],
                         user: User, from_above: bool = False) -> list[dict[str, Any]]:
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
                self._check_recording(session, ward, media.sha256, user, f"content.{index}.sha256", from_above)
                seg = MediaSegment(sha256=media.sha256, size=media.size, duration_ms=media.duration_ms,
                                   mime=media.mime, title=part.get("title", ""))
            else:
                seg = RelaySegment(url=part["url"], duration_ms=int(part["duration_s"] * 1000),
                                   title=part.get("title", ""))
            if isinstance(seg, MediaSegment):
                claim_media(session, seg.sha256, [ward])
            segments.append(seg.model_dump(mode="json"))
        return segments

    @staticmethod
    def _check_recording(session: Session, ward: str, sha256: str, user: User, field: str,
                         from_above: bool = False) -> None:
        """A recording named by an item must be its ward's: another ward's is unknown if the caller cannot see
        that ward (404, the words an unknown recording gets), refused (422) if they can. A city item may play
        a recording of any ward its sender writes in: each chosen ward then owns it."""
        owners = set(session.scalars(select(MediaWard.ward_id).where(MediaWard.sha256 == sha256)))
        # A file no ward owns yet (stored by something that records no owner) belongs to no other ward.
        if not owners or ward in owners:
            return
        if from_above and owners & wards_of(session, user, WRITER_ROLES):
            return
        if not owners & wards_of(session, user):
            raise NotInReach(f"no stored recording {sha256}")
        raise ItemInvalid(field, f"recording {sha256} belongs to another ward; upload it to ward {ward} first")

    def _conflicts(self, session: Session, ward: str, candidate: sm.ScheduleItem) -> list[Conflict]:
        # Items queued behind others yield: they never make a slot unavailable. Only the ward's own items
        # can clash: another ward's items play on other speakers.
        existing = [to_model(r) for r in session.scalars(
            select(ScheduleItem).where(ScheduleItem.ward_id == ward, ScheduleItem.status.in_(LIVE_STATUSES),
                                       ScheduleItem.id != candidate.id, ScheduleItem.queue.is_(False)))]
        now = now_ms()
        horizon = now + self.settings.conflict_horizon_days * 86_400_000
        return find_conflicts(candidate, existing, agent_zones(session, [ward]), now, horizon, self.settings.tz)

    def _targets_now(self, session: Session, row: ScheduleItem) -> set[str]:
        try:
            return set(resolve_targets(sm.Targets.model_validate(row.targets),
                                       agent_zones(session, [row.ward_id or FIRST_WARD])))
        except (ValidationError, sm.ScheduleError):
            return set()

    def _changed(self, session: Session, row: ScheduleItem, before: set[str]) -> None:
        # Told once the change is committed: only then may the publisher read it back.
        self.events.publish(ScheduleChanged(frozenset(before | self._targets_now(session, row))), session)
