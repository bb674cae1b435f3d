"""A ward's month in figures, as a ward reports upward: broadcasts and their hours by priority and by source,
speakers in service and their availability, faults and the time to repair them.

Every query names the wards it reads (``ward_id`` first, on an index: ``ix_plays_ward_scheduled``,
``ix_device_status_changes_ward_at``, ``ix_devices_ward_id``), so one ward's month reads only that ward's
rows, and the city's roll-up reads its wards in the same few queries. Months are the site's calendar months
(``settings.tz``): a month runs from local midnight of its first day to local midnight of the next month's.

What counts:

- a broadcast's *source* is the ward's own schedule item or announcement, a live session, or the city's
  item or announcement sent to its wards (``city``: a ward's part of a city broadcast names its parent);
- a *broadcast* is one announcement, one occurrence of a schedule item, or one live session, however many
  speakers played it; a *play* is one speaker playing it (proof of play, an attempt that started). Its
  *hours* are its air time (first speaker's start to the last one's end); *speaker hours* add every
  speaker's own;
- a speaker is *in service* when it is registered in the ward and not revoked at the end of the month (or
  now, for the month under way); its *availability* is the share of that time it was online, from the
  history of its link state (``device_status_changes``);
- a *fault* is an outage: a speaker went offline (its link lost, not switched off) and the *time to repair*
  runs until it was online again, also when that was after the month.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, String, case, cast, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from controller.broadcasts.proof_of_play import LIVE_PLAY_PREFIX
from controller.storage.models import Announcement, Device, DeviceEvent, DeviceStatusChange, Play, ScheduleItem, Unit

#: Priorities in the order a report lists them.
PRIORITIES: Final = ("normal", "priority", "emergency")
#: Where a broadcast came from: a ward's own schedule item or announcement, a live session, the city's (or
#: province's) item or announcement to its wards (``city``, "từ cấp trên"); ``other`` for proof of play that
#: names none of them.
SOURCES: Final = ("schedule", "announcement", "live", "city", "other")
#: Statuses a report reads as a lost link (a fault), and as available.
OFFLINE: Final = "offline"
ONLINE: Final = "online"
#: How many ids one ``IN (…)`` names: well inside every database's limit on bound parameters.
_CHUNK = 500
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_HOUR_MS = 3_600_000


class MonthError(ValueError):
    """A month that is not ``YYYY-MM`` (or not a real month)."""


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in the site's time zone."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` → the month; :class:`MonthError` for anything else."""
        match = _MONTH.match(text.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
            raise MonthError(f"month must be YYYY-MM (e.g. 2026-03), not {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        """The month ``day`` lies in."""
        return cls(day.year, day.month)

    def next(self) -> Month:
        """The month after."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        """The month before."""
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def span_ms(self, zone: ZoneInfo) -> tuple[int, int]:
        """[local midnight of the 1st, local midnight of the next month's 1st) in ms since the epoch."""
        after = self.next()
        start = datetime(self.year, self.month, 1, tzinfo=zone)
        end = datetime(after.year, after.month, 1, tzinfo=zone)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class Broadcasts:
    """Broadcasts of one group (a priority, a source, or all), their plays and hours."""

    broadcasts: int = 0
    plays: int = 0
    air_ms: int = 0
    speaker_ms: int = 0

    @property
    def hours(self) -> float:
        """Air time in hours."""
        return self.air_ms / _HOUR_MS

    @property
    def speaker_hours(self) -> float:
        """Every speaker's playing time added up, in hours."""
        return self.speaker_ms / _HOUR_MS

    def add(self, plays: int, air_ms: int, speaker_ms: int) -> None:
        """Counts one broadcast."""
        self.broadcasts += 1
        self.plays += plays
        self.air_ms += air_ms
        self.speaker_ms += speaker_ms


@dataclass
class Speakers:
    """Speakers in service and how available they were."""

    in_service: int = 0
    online_ms: int = 0
    observed_ms: int = 0

    @property
    def availability(self) -> float | None:
        """The share of the observed time the ward's speakers were online (None: nothing to observe)."""
        return self.online_ms / self.observed_ms if self.observed_ms else None


@dataclass
class Faults:
    """Outages: started in the month, repaired (and how long that took), still open at its end."""

    started: int = 0
    repaired: int = 0
    repair_ms: int = 0
    open_at_end: int = 0
    #: Errors the ward's agents reported in the month (``error`` events).
    agent_errors: int = 0

    @property
    def mean_time_to_repair_hours(self) -> float | None:
        """Mean time from an outage's start to its repair (None: none repaired)."""
        return self.repair_ms / self.repaired / _HOUR_MS if self.repaired else None


@dataclass
class WardMonth:
    """One ward's figures for one month."""

    ward: str
    ward_name: str
    month: Month
    total: Broadcasts = field(default_factory=Broadcasts)
    by_priority: dict[str, Broadcasts] = field(default_factory=lambda: {p: Broadcasts() for p in PRIORITIES})
    by_source: dict[str, Broadcasts] = field(default_factory=lambda: {s: Broadcasts() for s in SOURCES})
    speakers: Speakers = field(default_factory=Speakers)
    faults: Faults = field(default_factory=Faults)


def chunks(ids: Iterable[str], size: int = _CHUNK) -> Iterator[list[str]]:
    """``ids`` sorted, ``size`` at a time."""
    ordered = sorted(ids)
    for n in range(0, len(ordered), size):
        yield ordered[n:n + size]


def ward_filter(column: InstrumentedAttribute[str], wards: Collection[str]) -> ColumnElement[bool]:
    """``column`` is one of ``wards``: an equality for one ward (the index's range scan, nothing else read)."""
    return column == next(iter(wards)) if len(wards) == 1 else column.in_(sorted(wards))


def _source() -> ColumnElement[str]:
    # ScheduleItem and Announcement are outer-joined by their primary keys (see broadcasts_query).
    return case((Play.play_id.startswith(LIVE_PLAY_PREFIX, autoescape=True), "live"),
                (or_(ScheduleItem.parent_id.is_not(None), Announcement.parent_id.is_not(None)), "city"),
                (Play.announcement_id.is_not(None), "announcement"),
                (Play.item_id.is_not(None), "schedule"), else_="other")


def broadcast_key() -> ColumnElement[str]:
    """What one broadcast is, as SQL: a live session, an announcement, or one occurrence of an item."""
    return case((Play.play_id.startswith(LIVE_PLAY_PREFIX, autoescape=True), Play.play_id),
                (Play.announcement_id.is_not(None), Play.announcement_id),
                (Play.item_id.is_not(None), Play.item_id + ":" + cast(Play.scheduled_start_ms, String)),
                else_=Play.play_id)


def broadcasts_query(wards: Collection[str], start: int,
                     end: int) -> Select[str, str, str, int, int | None, int | None, int | None]:
    """Per ward, priority, source and broadcast: its plays, their time added up, its first start and last end.

    Plays that started, scheduled within [start, end): on ``ix_plays_ward_scheduled``, one range per ward.
    """
    source, key = _source(), broadcast_key()
    played = Play.ended_at_ms - Play.actual_start_ms
    return (select(Play.ward_id, Play.priority, source, func.count(), func.coalesce(func.sum(played), 0),
                   func.min(Play.actual_start_ms), func.max(Play.ended_at_ms))
            .outerjoin(ScheduleItem, ScheduleItem.id == Play.item_id)
            .outerjoin(Announcement, Announcement.id == Play.announcement_id)
            .where(ward_filter(Play.ward_id, wards), Play.scheduled_start_ms >= start,
                   Play.scheduled_start_ms < end, Play.actual_start_ms.is_not(None))
            .group_by(Play.ward_id, Play.priority, source, key))


def _count_broadcasts(session: Session, reports: dict[str, WardMonth], start: int, end: int) -> None:
    query = broadcasts_query(reports, start, end)
    for ward_id, priority, src, plays, speaker_ms, first, last in session.execute(query):
        air = max(0, last - first) if first is not None and last is not None else 0
        report = reports[ward_id]
        speaker_ms = max(0, int(speaker_ms or 0))
        report.total.add(plays, air, speaker_ms)
        report.by_priority.setdefault(priority, Broadcasts()).add(plays, air, speaker_ms)
        report.by_source.setdefault(src, Broadcasts()).add(plays, air, speaker_ms)


@dataclass
class _Timeline:
    ward: str
    since: int
    state: str
    changes: list[tuple[int, str]] = field(default_factory=list)


def _count_speakers(session: Session, reports: dict[str, WardMonth], start: int, end: int, now: int) -> None:
    until = min(end, now)
    if until <= start:
        return  # a month still to come: nothing in service yet, nothing to observe
    until_at = datetime.fromtimestamp(until / 1000, UTC)
    before = (select(DeviceStatusChange.status)
              .where(DeviceStatusChange.agent_id == Device.id, DeviceStatusChange.at_ms < start)
              .order_by(DeviceStatusChange.at_ms.desc(), DeviceStatusChange.id.desc()).limit(1)
              .scalar_subquery())
    in_service = (select(Device.id, Device.ward_id, Device.created_at, before)
                  .where(ward_filter(Device.ward_id, reports), Device.created_at < until_at,
                         or_(Device.revoked_at.is_(None), Device.revoked_at >= until_at)))
    timelines: dict[str, _Timeline] = {}
    for agent_id, ward_id, created_at, state in session.execute(in_service):
        since = max(start, int(created_at.timestamp() * 1000))
        timelines[agent_id] = _Timeline(ward_id, since, state or "unknown")
        reports[ward_id].speakers.in_service += 1
    changes = (select(DeviceStatusChange.agent_id, DeviceStatusChange.at_ms, DeviceStatusChange.status)
               .where(ward_filter(DeviceStatusChange.ward_id, reports),
                      DeviceStatusChange.at_ms >= start, DeviceStatusChange.at_ms < until)
               .order_by(DeviceStatusChange.at_ms, DeviceStatusChange.id))
    for agent_id, at_ms, status in session.execute(changes):
        if (line := timelines.get(agent_id)) is not None:
            line.changes.append((at_ms, status))
    still_open: dict[str, int] = {}
    for agent_id, line in timelines.items():
        report = reports[line.ward]
        state, at = line.state, line.since
        outage: int | None = at if state == OFFLINE else None
        outage_counted = False  # an outage already under way when the month began was counted before
        for changed_at, status in line.changes:
            changed_at = max(changed_at, line.since)
            if state == ONLINE:
                report.speakers.online_ms += changed_at - at
            report.speakers.observed_ms += changed_at - at
            if status == OFFLINE and state != OFFLINE:
                outage, outage_counted = changed_at, True
                report.faults.started += 1
            elif status == ONLINE and outage is not None:
                if outage_counted:
                    report.faults.repaired += 1
                    report.faults.repair_ms += changed_at - outage
                outage = None
            state, at = status, changed_at
        if state == ONLINE:
            report.speakers.online_ms += until - at
        report.speakers.observed_ms += until - at
        if outage is not None:
            report.faults.open_at_end += 1
            if outage_counted:
                still_open[agent_id] = outage
    if still_open and until < now:
        _repairs_after(session, reports, timelines, still_open, until)
    _count_errors(session, reports, timelines, start, end)


def _repairs_after(session: Session, reports: dict[str, WardMonth], timelines: dict[str, _Timeline],
                   still_open: dict[str, int], after: int) -> None:
    """Outages of the month that were repaired after it: their time to repair counts in the month they began."""
    for ids in chunks(still_open):
        rows = session.execute(select(DeviceStatusChange.agent_id, func.min(DeviceStatusChange.at_ms))
                               .where(DeviceStatusChange.agent_id.in_(ids), DeviceStatusChange.status == ONLINE,
                                      DeviceStatusChange.at_ms >= after)
                               .group_by(DeviceStatusChange.agent_id))
        for agent_id, repaired_at in rows:
            faults = reports[timelines[agent_id].ward].faults
            faults.repaired += 1
            faults.repair_ms += repaired_at - still_open[agent_id]


def _count_errors(session: Session, reports: dict[str, WardMonth], timelines: dict[str, _Timeline],
                  start: int, end: int) -> None:
    for ids in chunks(timelines):
        rows = session.execute(select(DeviceEvent.agent_id, func.count())
                               .where(DeviceEvent.agent_id.in_(ids), DeviceEvent.type == "error",
                                      DeviceEvent.ts_ms >= start, DeviceEvent.ts_ms < end)
                               .group_by(DeviceEvent.agent_id))
        for agent_id, errors in rows:
            reports[timelines[agent_id].ward].faults.agent_errors += errors


def ward_months(session: Session, wards: Collection[str], month: Month, zone: ZoneInfo,
                now_ms: int | None = None) -> list[WardMonth]:
    """The figures of ``month`` for each of ``wards`` (already checked: the caller may see them), by ward id.

    A ward with no speakers and no broadcasts gets zeros: a ward that broadcast nothing reports that too.
    """
    if not wards:
        return []
    now = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
    names = dict(session.execute(select(Unit.id, Unit.name).where(ward_filter(Unit.id, wards))).all())
    reports = {w: WardMonth(w, names.get(w, w), month) for w in sorted(wards)}
    start, end = month.span_ms(zone)
    _count_broadcasts(session, reports, start, end)
    _count_speakers(session, reports, start, end, now)
    return list(reports.values())
