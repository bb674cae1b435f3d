"""Bodies and answers of the schedule: an item's content, the item, its conflicts and plans, zone rules, and
an item's report."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.api.schemas import TargetsIn, WardField, _In
from controller.storage.models.units import FIRST_WARD
from devices.protocol import MAX_SEGMENT_MS, Priority, RelayUrl, Sha256Hex, Title


class TtsContentIn(_In):
    """Text the controller turns into speech when the item is saved."""

    kind: Literal["tts"]
    text: str = Field(min_length=1, max_length=5000)
    title: Title = ""


class RecordingContentIn(_In):
    """A recording already uploaded (``POST /api/v1/media``), by its hash."""

    kind: Literal["media"]
    sha256: Sha256Hex
    title: Title = ""


class RelayContentIn(_In):
    """A live upstream stream (tiếp sóng) played for ``duration_s`` seconds."""

    kind: Literal["relay"]
    url: RelayUrl
    duration_s: int = Field(gt=0, le=MAX_SEGMENT_MS // 1000)
    title: Title = ""


ContentIn = Annotated[TtsContentIn | RecordingContentIn | RelayContentIn, Field(discriminator="kind")]


class ScheduleItemCreate(_In):
    """A broadcast on a schedule. Times without an offset are the site's wall clock."""

    title: str = Field(default="", max_length=200)
    priority: Priority = Priority.NORMAL
    content: list[ContentIn] = Field(min_length=1, max_length=20, description="played back to back")
    targets: TargetsIn
    start: datetime = Field(description="first (or only) start; naive = the site's local time")
    rrule: str | None = Field(default=None, max_length=500,
                              description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6,17")
    until: datetime | None = Field(default=None, description="no start after this (site's local time)")
    exdates: list[datetime] = Field(default_factory=list, max_length=500, description="occurrences left out")
    queue: bool = Field(default=False, description="on a conflict, play after the other item instead of 409")
    ward: WardField = None


class ScheduleItemPublic(BaseModel):
    """A stored item with its status and the next times it will play."""

    id: str
    revision: int
    title: str
    priority: str
    content: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    duration_ms: int
    targets: dict[str, Any]
    ward: str = Field(default=FIRST_WARD, description="the ward it belongs to: its targets are that ward's")
    timezone: str
    start: datetime
    rrule: str | None
    until: datetime | None
    exdates: list[datetime]
    queue: bool
    status: str
    rejection_reason: str | None
    created_by: str | None
    updated_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    updated_at: datetime
    next_starts: list[datetime]
    parent: str | None = Field(default=None, description="the city item this is the ward's part of (from above, "
                                                         "cấp trên): the city changes or cancels it")
    from_unit: str | None = Field(default=None, description="the city or province it comes from")


class RejectRequest(_In):
    """Why an item is rejected (shown to its author)."""

    reason: str = Field(min_length=1, max_length=1000)


class ConflictPublic(BaseModel):
    """An overlap with another item of the same level on the same speaker."""

    item_id: str
    title: str
    agent_id: str
    start: datetime
    other_start: datetime
    other_end: datetime


class PlannedPlayPublic(BaseModel):
    """One play the schedule will make."""

    agent_id: str
    play_id: str
    item_id: str
    title: str
    priority: str
    start: datetime
    end: datetime
    volume: int | None
    segments: list[dict[str, Any]]


class BlockedPublic(BaseModel):
    """A play the rules hold back (quiet hours, unknown target)."""

    agent_id: str
    item_id: str
    start: datetime
    reason: str


class UpcomingPublic(BaseModel):
    """What will play where in the next hours."""

    from_: datetime = Field(alias="from")
    until: datetime
    plays: list[PlannedPlayPublic]
    blocked: list[BlockedPublic]

    model_config = ConfigDict(populate_by_name=True)


class QuietHoursIn(_In):
    """Nothing but emergencies between ``start`` and ``end`` (local; end ≤ start crosses midnight)."""

    start: time
    end: time
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] | None = None


class VolumeRuleIn(_In):
    """Volume between two local times."""

    start: time
    end: time
    volume: int = Field(ge=0, le=100)


class ZoneUpdate(_In):
    """A zone's display name and rules."""

    name: str = Field(default="", max_length=200)
    quiet_hours: list[QuietHoursIn] = Field(default_factory=list, max_length=20)
    volumes: list[VolumeRuleIn] = Field(default_factory=list, max_length=24)
    ward: WardField = None


class ZonePublic(BaseModel):
    """A zone, its agents and rules."""

    id: str
    name: str
    ward: str = Field(default=FIRST_WARD, description="the ward it belongs to")
    agents: list[str]
    quiet_hours: list[dict[str, Any]]
    volumes: list[dict[str, Any]]


class ItemReport(BaseModel):
    """TT39's report for one item: per occurrence, how many targets played it in full."""

    item_id: str
    title: str
    occurrences: list[dict[str, Any]]
