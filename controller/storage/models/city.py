"""Broadcasts from above: what the staff of a city or province send or schedule to chosen wards.

A city broadcast is one parent row here and one ordinary row per chosen ward (a schedule item or an
announcement of that ward, whose ``parent_id`` names this row): every per-ward rule — targets within the
ward, windows per agent, conflicts, proof of play — applies to the children unchanged, and a ward's
staff see them in their own schedule marked as coming from above (cấp trên).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow


class CityBroadcast(Base):
    """A schedule item or an announcement the upper level sent to some of its wards (the children carry it)."""

    __tablename__ = "city_broadcasts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: ``schedule`` (children are schedule items) or ``announcement`` (children are announcements).
    kind: Mapped[str] = mapped_column(String(16))
    #: The city or province it comes from: the lowest upper unit over every chosen ward.
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    #: The wards chosen, in the order given (``all_wards``: every ward under the sender's units then).
    wards: Mapped[list[Any]] = mapped_column(default=list)
    all_wards: Mapped[bool] = mapped_column(default=False)
    title: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[str] = mapped_column(String(16))
    #: active, or cancelled (every child cancelled with it).
    status: Mapped[str] = mapped_column(String(16), default="active")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
