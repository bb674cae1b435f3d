"""The schedule: zones, schedule items, and the window each agent was last sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.units import ward_column


class Zone(Base):
    """A named group of agents (cụm loa) with its quiet hours and volumes by time of day."""

    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    name: Mapped[str] = mapped_column(String(200), default="")
    quiet_hours: Mapped[list[Any]] = mapped_column(default=list)
    volumes: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ScheduleItem(Base):
    """A scheduled broadcast: one-off or recurring, a programme of TTS, recordings and relays.

    ``start_local``/``until_local``/``exdates`` are wall-clock times in the site's time zone (as in
    iCalendar), kept as ISO text so no database shifts them. ``segments`` is the programme resolved
    into what agents play (speech rendered, recordings looked up).
    """

    __tablename__ = "schedule_items"
    __table_args__ = (Index("ix_schedule_items_status", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    revision: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[str] = mapped_column(String(16))
    content: Mapped[list[Any]] = mapped_column()
    segments: Mapped[list[Any]] = mapped_column()
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    start_local: Mapped[str] = mapped_column(String(32))
    rrule: Mapped[str | None] = mapped_column(Text, nullable=True)
    until_local: Mapped[str | None] = mapped_column(String(32), nullable=True)
    exdates: Mapped[list[Any]] = mapped_column(default=list)
    queue: Mapped[bool] = mapped_column(default=False)
    #: The city broadcast this item is its ward's part of (from above: changed only there), or None.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("city_broadcasts.id"), nullable=True, index=True)
    #: pending (awaiting approval) → approved | rejected; cancelled when deleted (history is kept).
    status: Mapped[str] = mapped_column(String(16))
    rejection_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: When this revision was saved (ms): occurrences before it are never played.
    saved_ms: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AgentSchedule(Base):
    """The last schedule window pushed to an agent (retained on the broker) and what it applied."""

    __tablename__ = "agent_schedules"

    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    plays: Mapped[int] = mapped_column(Integer)
    window_end_ms: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published: Mapped[bool] = mapped_column(default=False)
