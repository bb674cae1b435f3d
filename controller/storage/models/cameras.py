"""Cameras: the registry, their events, and discovery requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.units import ward_column


class Camera(Base):
    """A camera attached to an agent and a zone; its password is a Fernet token, never plain text."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    name: Mapped[str] = mapped_column(String(200), default="")
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), nullable=True)
    zone: Mapped[str | None] = mapped_column(String(63), nullable=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(128), default="")
    password_enc: Mapped[str] = mapped_column(Text)
    #: False for an RTSP-only camera registered with its stream address (no ONVIF, no PTZ).
    onvif: Mapped[bool] = mapped_column(default=True)
    manufacturer: Mapped[str] = mapped_column(String(128), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    firmware: Mapped[str] = mapped_column(String(128), default="")
    serial: Mapped[str] = mapped_column(String(128), default="")
    hardware_id: Mapped[str] = mapped_column(String(128), default="")
    profiles: Mapped[list[Any]] = mapped_column(default=list)
    profile_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The chosen profile's stream address as the camera reported it (no credentials in it).
    stream_uri: Mapped[str] = mapped_column(Text)
    snapshot_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    ptz: Mapped[bool] = mapped_column(default=False)
    motion: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: unknown → online | fault (a fault event is raised on the way in, a recovered one on the way out).
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    fault: Mapped[str | None] = mapped_column(String(300), nullable=True)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The WS-Discovery endpoint it was registered from, if any.
    discovery_endpoint: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: Where it is mounted (WGS 84 degrees), for the console's map: both or neither (devices/geo.py).
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CameraEvent(Base):
    """Motion seen by the gateway (with a stored snapshot), or a camera's fault and recovery."""

    __tablename__ = "camera_events"
    __table_args__ = (Index("ix_camera_events_camera_ts", "camera_id", "ts_ms"),
                      Index("ix_camera_events_ts", "ts_ms"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ward_id: Mapped[str] = ward_column()
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    agent_id: Mapped[str | None] = mapped_column(String(63), nullable=True)
    zone: Mapped[str | None] = mapped_column(String(63), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Path of the stored JPEG under the snapshot directory; null once retention removed it.
    snapshot: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CameraDiscovery(Base):
    """An ONVIF device an agent found by WS-Discovery (one row per agent and endpoint)."""

    __tablename__ = "camera_discoveries"
    __table_args__ = (UniqueConstraint("agent_id", "endpoint", name="uq_camera_discoveries_agent_endpoint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ward_id: Mapped[str] = ward_column()
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(256))
    host: Mapped[str] = mapped_column(String(253))
    xaddrs: Mapped[list[Any]] = mapped_column(default=list)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    types: Mapped[list[Any]] = mapped_column(default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
