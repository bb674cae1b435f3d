"""Administrative units (city/province → ward/commune), the roles staff hold on them, and which wards a
recording belongs to.

Zones (khu phố, ấp, tổ dân phố) are the tree's leaves and keep their own table (``zones.ward_id``). Every row
a ward owns carries its ``ward_id``; :func:`ward_column` is that column, the same on every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow

#: The unit every deployment starts with, at the top of the tree (a city or a province).
ROOT_UNIT: Final = "city"
#: The ward every deployment starts with: a single-ward site never names another, and rows written
#: before wards existed were moved into it.
FIRST_WARD: Final = "ward"
#: Kinds of unit: the upper level (a city or a province) and the wards and communes under it.
UPPER_KINDS: Final = ("province", "city")
WARD_KINDS: Final = ("ward", "commune")
UNIT_KINDS: Final = UPPER_KINDS + WARD_KINDS


def ward_column() -> Mapped[str]:
    """The ward a row belongs to: indexed, because every ward-scoped query filters on it first."""
    return mapped_column(ForeignKey("units.id"), index=True, default=FIRST_WARD)


class Unit(Base):
    """A city or province (the upper level) or a ward or commune under one."""

    __tablename__ = "units"

    #: Lower-case letters, digits, ``_`` and ``-``: it can become a topic segment.
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    #: None only for the root.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), nullable=True, index=True)
    #: The official administrative code (mã đơn vị hành chính), when the site enters it.
    code: Mapped[str] = mapped_column(String(16), default="")
    #: Where the map centres on this unit.
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: A ward that approves the city's items of normal priority itself: they wait in its approval queue
    #: (priority and emergency ones still go straight through).
    approve_city_items: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RoleGrant(Base):
    """One role held on one unit: it covers that unit and every ward under it."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", "unit_id", name="uq_role_grants"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)


class MediaWard(Base):
    """A ward that stored (or was sent) a media file: files are kept once by content, owned by every ward
    that has them."""

    __tablename__ = "media_wards"

    sha256: Mapped[str] = mapped_column(ForeignKey("media.sha256", ondelete="CASCADE"), primary_key=True)
    ward_id: Mapped[str] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
