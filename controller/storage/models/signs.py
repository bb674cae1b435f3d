"""LED signs: content, signs, the items that show content on them, and each sign's playlist as sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.units import ward_column


class SignContent(Base):
    """What an LED board shows: pages of text or images (``devices.led.content.SignPage`` as JSON)."""

    __tablename__ = "sign_contents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    title: Mapped[str] = mapped_column(String(200), default="")
    pages: Mapped[list[Any]] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Sign(Base):
    """A board attached to an agent; ``name`` is the ``[[signs]]`` name in that agent's config."""

    __tablename__ = "signs"
    __table_args__ = (UniqueConstraint("agent_id", "name", name="uq_signs_agent_name"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignItem(Base):
    """Content on signs at a time: one-off or recurring (local wall times, as schedule items)."""

    __tablename__ = "sign_items"
    __table_args__ = (Index("ix_sign_items_status", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    revision: Mapped[int] = mapped_column(Integer, default=0)
    content_id: Mapped[str] = mapped_column(ForeignKey("sign_contents.id"))
    title: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[str] = mapped_column(String(16))
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    start_local: Mapped[str] = mapped_column(String(32))
    rrule: Mapped[str | None] = mapped_column(Text, nullable=True)
    until_local: Mapped[str | None] = mapped_column(String(32), nullable=True)
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    #: active or cancelled (history is kept).
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AgentSignPlaylist(Base):
    """The last signed ``sign.playlist`` pushed to an agent (retained on ``…/signs``)."""

    __tablename__ = "agent_sign_playlists"

    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    window_end_ms: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published: Mapped[bool] = mapped_column(default=False)
