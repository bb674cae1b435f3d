"""Staff: users, their API tokens, and the chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow

#: Every staff role, most powerful first: a user's ``role`` column holds the first of their roles in this order.
ROLES: tuple[str, ...] = ("admin", "approver", "officer", "security", "technician", "viewer")


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

    @property
    def role_set(self) -> frozenset[str]:
        """Every role this user holds."""
        return frozenset(self.roles or ()) | {self.role}

    def set_roles(self, roles: list[str] | tuple[str, ...] | frozenset[str]) -> None:
        """Sets the roles (deduplicated, most powerful first) and the primary ``role`` with them."""
        ordered = [r for r in ROLES if r in set(roles)]
        if not ordered:
            raise ValueError("a user needs at least one role")
        self.roles = ordered
        self.role = ordered[0]


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
