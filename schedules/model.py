"""What an officer schedules: programmes of recordings and relays, their targets, times and zone policies.

All times here are **naive local wall time** in the site's time zone (iCalendar's floating DTSTART), so
"06:00 every weekday" stays 06:00 across daylight-saving changes; ``schedules.localtime`` turns them
into UTC instants.

Validation style: constructing a model raises pydantic's ``ValidationError``; each error's ``loc`` names
the body field at fault (``("rrule",)``, ``("until",)``, ``("targets",)``, ``("segments", 0, "relay",
"url")``). Our own checks raise ``ScheduleError(field, message)`` inside validators, which pydantic
reports at that field with our message; ``ScheduleError.from_validation`` turns a ``ValidationError``
back into one ``ScheduleError`` for the API layer. Plain functions (``validate_rrule``,
``resolve_targets``) raise ``ScheduleError`` directly.

A programme's segments (``MediaSegment``, ``RelaySegment``) and their limits are the protocol's
(``devices.protocol.segments``), re-exported here: what the schedule accepts is exactly what an agent's
window carries.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from devices.protocol import (
    ID_PATTERN,
    MAX_SEGMENT_MS,
    MAX_SEGMENTS,
    MediaSegment,
    Priority,
    RelaySegment,
    Segment,
    Title,
)
from schedules.errors import ScheduleError
from schedules.rrules import check_fires, parse_rule

__all__ = [
    "MAX_SEGMENT_MS",
    "MediaSegment",
    "QuietHours",
    "RelaySegment",
    "ScheduleError",
    "ScheduleItem",
    "Segment",
    "Targets",
    "VolumeRule",
    "ZonePolicy",
]

#: Longest schedule item id: ``{id}-{revision}-{start ms}`` must stay a 64-character play id.
MAX_ITEM_ID: Final = 32
#: Years a schedule may name; keeps date arithmetic far from datetime's limits.
_YEARS: Final = (1970, 9000)

_STRICT = ConfigDict(extra="forbid", frozen=True)
ZoneId = Annotated[str, Field(pattern=ID_PATTERN)]


class Targets(BaseModel):
    """Which speakers play an item: every agent, or the agents of some zones plus some named agents."""

    model_config = _STRICT

    all: bool = False
    zones: list[ZoneId] = Field(default_factory=list, max_length=1000)
    agents: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _one_kind(self) -> Targets:
        if self.all and (self.zones or self.agents):
            raise ScheduleError("targets", "targets: choose either all, or zones/agents, not both")
        if not self.all and not self.zones and not self.agents:
            raise ScheduleError("targets", "targets must be all, or name at least one zone or agent")
        return self


def _naive(value: datetime, field: str) -> datetime:
    if value.tzinfo is not None:
        raise ScheduleError(
            field, f"{field} must be a local wall time without a time zone or offset (got {value.isoformat()})"
        )
    if not _YEARS[0] <= value.year <= _YEARS[1]:
        raise ScheduleError(field, f"{field} must be between the years {_YEARS[0]} and {_YEARS[1]}")
    # Occurrences are whole seconds (dateutil drops microseconds), so the stored value is too; which of
    # two repeated wall times is meant is decided by schedules.localtime (the first), not by ``fold``.
    return value.replace(microsecond=0, fold=0)


class ScheduleItem(BaseModel):
    """One schedule entry: a programme played at ``start`` and, with ``rrule``, at every recurrence.

    ``start``, ``until`` and ``exdates`` are naive local wall times. ``until`` is the last possible start
    (inclusive); a rule's own UNTIL/COUNT applies as well. ``exdates`` are occurrences removed.
    """

    model_config = _STRICT

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ITEM_ID)
    revision: int = Field(default=0, ge=0, le=10**9)
    title: Title = ""
    priority: Priority = Priority.NORMAL
    segments: list[Segment] = Field(min_length=1, max_length=MAX_SEGMENTS)
    targets: Targets
    start: datetime
    rrule: str | None = None
    until: datetime | None = None
    exdates: list[datetime] = Field(default_factory=list, max_length=1000)
    queue: bool = False
    created_ms: int = Field(default=0, ge=0)

    @property
    def duration_ms(self) -> int:
        """Length of the programme: its segments played back to back."""
        return sum(segment.duration_ms for segment in self.segments)

    @field_validator("start")
    @classmethod
    def _start_naive(cls, value: datetime) -> datetime:
        return _naive(value, "start")

    @field_validator("rrule")
    @classmethod
    def _valid_rule(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        rule = parse_rule(value)
        start = info.data.get("start")
        if isinstance(start, datetime):  # absent when start itself was invalid
            check_fires(rule, start)
        return rule.text

    @field_validator("until")
    @classmethod
    def _until_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = _naive(value, "until")
        start = info.data.get("start")
        if isinstance(start, datetime) and value < start:
            raise ScheduleError(
                "until", f"until ({value.isoformat()}) is before start ({start.isoformat()}): nothing would play"
            )
        return value

    @field_validator("exdates")
    @classmethod
    def _exdates_naive(cls, value: list[datetime]) -> list[datetime]:
        return [_naive(moment, "exdates") for moment in value]


def _naive_time(value: time, field: str) -> time:
    if value.tzinfo is not None:
        raise ScheduleError(field, f"{field} must be a local time of day without a time zone")
    return value


class _DailyWindow(BaseModel):
    """A time-of-day window; ``end ≤ start`` means it crosses midnight (``end == start``: a whole day)."""

    model_config = _STRICT

    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time, info: ValidationInfo) -> time:
        return _naive_time(value, str(info.field_name))


class QuietHours(_DailyWindow):
    """Hours when a zone's speakers stay silent except for emergencies.

    ``weekdays`` (0 = Monday) are the days on which the window *starts*: ``21:00–05:30`` on ``[4]`` is
    Friday night until Saturday 05:30. None means every day.
    """

    weekdays: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(default=None, min_length=1, max_length=7)


class VolumeRule(_DailyWindow):
    """The volume (0–100) of a zone's speakers for plays starting in a time-of-day window."""

    volume: int = Field(ge=0, le=100)


class ZonePolicy(BaseModel):
    """A zone's quiet hours and time-of-day volumes."""

    model_config = _STRICT

    zone: ZoneId
    quiet_hours: list[QuietHours] = Field(default_factory=list, max_length=50)
    volumes: list[VolumeRule] = Field(default_factory=list, max_length=50)
