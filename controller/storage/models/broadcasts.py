"""Broadcasts: media files, announcements and their commands and deliveries, plays (proof of play and
the plays an agent was given), and live sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.units import FIRST_WARD, ward_column


class MediaFile(Base):
    """A file in the content-addressed media store."""

    __tablename__ = "media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int] = mapped_column(Integer)
    mime: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    loudness_lufs: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: A standby alarm: every agent keeps it, so an emergency with it needs neither download nor attachment.
    standby: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Announcement(Base):
    """Text an officer wants heard; rendered once, delivered to every target."""

    __tablename__ = "announcements"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    text: Mapped[str] = mapped_column(Text)
    #: The text as the engine read it (numbers, dates, abbreviations spelled out).
    spoken_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[str] = mapped_column(String(16))
    targets: Mapped[list[Any]] = mapped_column()
    requested_start_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    start_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="rendering")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Indexed: a device may download a file only if an announcement with it was delivered to it.
    media_sha256: Mapped[str | None] = mapped_column(ForeignKey("media.sha256"), nullable=True, index=True)
    engine: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: The city broadcast this announcement is its ward's part of, or None.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("city_broadcasts.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GroupCommand(Base):
    """One signed command for zones or for everyone, published once on each of ``topics``.

    The broker fans it out; each agent it reaches has a :class:`Delivery` naming it, so what every
    speaker did with it is still tracked one by one.
    """

    __tablename__ = "group_commands"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    announcement_id: Mapped[str] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"), index=True)
    topics: Mapped[list[Any]] = mapped_column()
    payload: Mapped[str] = mapped_column(Text)
    exp_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One signed command to one agent (its own, or a group command it is reached by), and how far it got."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_status", "status"),
                      UniqueConstraint("command_id", "agent_id", name="uq_deliveries_command_agent"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[str] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    command_id: Mapped[str] = mapped_column(String(64))
    #: Set when the command went to the agent's zones: topic and payload are the group command's.
    group_id: Mapped[str | None] = mapped_column(ForeignKey("group_commands.id", ondelete="CASCADE"), nullable=True,
                                                 index=True)
    topic: Mapped[str | None] = mapped_column(String(255), nullable=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    exp_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Play(Base):
    """Proof of play: what an agent reports it actually played, and when (one row per attempt)."""

    __tablename__ = "plays"
    __table_args__ = (UniqueConstraint("agent_id", "play_id", "attempt"),
                      Index("ix_plays_actual_start", "actual_start_ms"),
                      Index("ix_plays_scheduled_start", "scheduled_start_ms"),
                      # A ward's report and CSV read one ward's plays over a span of days.
                      Index("ix_plays_ward_scheduled", "ward_id", "scheduled_start_ms"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The ward its device was in when it played (a device moved later keeps its history where it was).
    ward_id: Mapped[str] = mapped_column(ForeignKey("units.id"), default=FIRST_WARD)
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    play_id: Mapped[str] = mapped_column(String(64))
    #: 0 for the first time; a recording pre-empted and played again is attempt 1, 2…
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    announcement_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    item_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: The play's first recording; null for a relay.
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[str] = mapped_column(String(16))
    output: Mapped[str] = mapped_column(String(100), default="")
    scheduled_start_ms: Mapped[int] = mapped_column(BigInteger)
    actual_start_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class GivenPlay(Base):
    """A play the controller gave an agent other than by a delivery or a live session: an occurrence in
    a schedule window it was sent, or a remote-operation tone. Proof of play is believed only for
    deliveries, live sessions and these (controller/fleet/play_guard.py)."""

    __tablename__ = "given_plays"
    __table_args__ = (Index("ix_given_plays_start", "start_ms"),)

    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    play_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``window`` or ``tone``.
    source: Mapped[str] = mapped_column(String(16))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LiveSession(Base):
    """A live broadcast (phát trực tiếp from a microphone, or a relay started on demand) and its record."""

    __tablename__ = "live_sessions"
    __table_args__ = (Index("ix_live_sessions_started_at", "started_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    #: Kept as text too: the record says who spoke even after the account is gone.
    username: Mapped[str] = mapped_column(String(100))
    #: ``microphone`` or ``relay``.
    source: Mapped[str] = mapped_column(String(16))
    relay_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    priority: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200), default="")
    zones: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Agent ids the session was aimed at (after zones were resolved).
    targets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: ``starting`` → ``live`` → ``ended`` | ``failed``.
    status: Mapped[str] = mapped_column(String(16), default="starting")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    live_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Take-overs, in both directions, and ones that never happened: ``{"at", "kind":
    #: "took_over"|"taken_over"|"takeover_failed", "session", "agents"}`` (a failed one also says why).
    notes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: The Opus recording, relative to the data directory; null once retention removed it.
    recording: Mapped[str | None] = mapped_column(String(300), nullable=True)
    recording_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    recording_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
