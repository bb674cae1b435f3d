"""Agents: the device registry, what they reported, enrolment codes, and the outbox of commands to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.units import ward_column


class Device(Base):
    """An edge agent: registered through the API, kept current from its MQTT topics."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    name: Mapped[str] = mapped_column(String(200), default="")
    zones: Mapped[list[Any]] = mapped_column(default=list)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hostname: Mapped[str | None] = mapped_column(String(255), nullable=True)
    capabilities: Mapped[list[Any]] = mapped_column(default=list)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Mosquitto ``$7$`` hash of its broker password (username: its id); none: no broker access.
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Name of its board profile in firmware_configs/ (sent to it at enrolment).
    board_profile: Mapped[str | None] = mapped_column(String(63), nullable=True)
    #: Set when revoked: broker access and token withdrawn until it is enrolled again.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Proof of play it sent for plays it was never given (controller/fleet/play_guard.py): not stored as plays.
    suspicious_plays: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    suspicious_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Messages of its own the controller's inbox dropped: over its rate or its share (controller/fleet/inbox.py).
    inbox_dropped: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Where it stands (WGS 84 degrees), for the console's map: both or neither (devices/geo.py).
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)


class DeviceEvent(Base):
    """Every event an agent sent, once (the id makes a resent event a no-op)."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_agent_ts", "agent_id", "ts_ms"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EnrolmentCode(Base):
    """A one-time code a technician types (or scans) on a new Pi; only its SHA-256 is kept."""

    __tablename__ = "enrolment_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When it was used (or superseded by a newer code / a revocation); a used code never works again.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutboxMessage(Base):
    """One message for the broker, written in the transaction that caused it, published after it commits.

    The outbox's contract (who writes, who claims, what each status means) is in
    controller/messaging/outbox.py. ``claim`` and ``claimed_until_ms`` mark a row a publisher is sending
    now; a claim past its time is free to take again (its publisher died).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_queue", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The command type (``speaker.play``, ``schedule.window``…), ``status``, or a camera event's type.
    kind: Mapped[str] = mapped_column(String(64))
    #: The command's ``to`` (an agent id or ``zone:a,b``), the agent of a status, None for the controller's own.
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The signed envelope's id (deliveries and group commands carry it); None for unsigned messages.
    command_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    topics: Mapped[list[Any]] = mapped_column()
    payload: Mapped[str] = mapped_column(Text)
    retain: Mapped[bool] = mapped_column(default=False)
    #: Higher goes first (the priority rank: emergency 2, priority 1, normal 0).
    priority: Mapped[int] = mapped_column(Integer, default=0)
    #: After this (ms) nobody would act on it: it is marked expired instead of published. None: never.
    exp_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: The writer's reference, handed back when it is settled (a retained document's version).
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: pending → sent | expired | failed | superseded (a newer retained document for the same topic).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    claim: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
