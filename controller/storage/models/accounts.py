"""Staff: users, their API tokens, and the chained audit log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.units import FIRST_WARD, ROOT_UNIT, RoleGrant

#: The upper level's source system (hệ thống thông tin nguồn, TT 39/2020): an account of a province's or city's
#: system that pushes items to wards and reads back proof of play and the monthly figures, and nothing else.
SOURCE_ROLE = "source"
#: Every role, most powerful first: a user's ``role`` column holds the first of their roles in this order.
ROLES: tuple[str, ...] = ("admin", "approver", "officer", "security", "technician", "viewer", SOURCE_ROLE)


class User(Base):
    """A member of staff holding one or more roles, optionally limited to some zones."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    #: The most powerful of ``roles`` (kept so ``user.role == "admin"`` checks stay right).
    role: Mapped[str] = mapped_column(String(32), default="admin")
    #: Every role held; empty on rows written before roles were a list (then ``role`` alone counts).
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Zones the user is limited to; empty means every zone.
    zones: Mapped[list[Any]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The roles held and where (controller/accounts/reach.py turns them into wards).
    grants: Mapped[list[RoleGrant]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                   order_by=RoleGrant.id)

    @property
    def role_set(self) -> frozenset[str]:
        """Every role this user holds, on any unit (what the coarse role check at a route reads)."""
        return frozenset(self.roles or ()) | {self.role}

    def set_grants(self, grants: Iterable[tuple[str, str]]) -> None:
        """Replaces every grant with these ``(role, unit id)`` pairs and keeps ``roles``/``role`` as their union."""
        pairs = list(dict.fromkeys(grants))
        unknown = sorted({role for role, _ in pairs} - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles: {', '.join(unknown)}")
        ordered = [r for r in ROLES if r in {role for role, _ in pairs}]
        if not ordered:
            raise ValueError("a user needs at least one role")
        kept = {(g.role, g.unit_id): g for g in self.grants}
        self.grants = [kept.get(pair) or RoleGrant(role=pair[0], unit_id=pair[1]) for pair in pairs]
        self.roles = ordered
        self.role = ordered[0]

    def set_roles(self, roles: Iterable[str], unit_id: str | None = None) -> None:
        """Grants exactly these roles, all on one unit: the one named, else the one unit the user's roles are
        held on now (a ward's officer made its approver stays in that ward), else — for a user with no roles
        yet — the whole deployment. ValueError for a user holding roles on several units and no unit named."""
        if unit_id is None:
            held = {g.unit_id for g in self.grants}
            if len(held) > 1:
                raise ValueError("this user holds roles on several units: name the unit for these roles")
            unit_id = next(iter(held)) if held else ROOT_UNIT
        self.set_grants((role, unit_id) for role in roles)


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Console sessions expire; tokens for scripts have none.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEvent(Base):
    """Who did what, when: every change that decides what the speakers say."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: SHA-256 of the previous row's ``hash`` ("" for the first row) and of this row
    #: (controller/accounts/audit_chain.py).
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The unit the action concerns: a ward, or the upper level for what spans wards (users, units).
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True, default=FIRST_WARD)
