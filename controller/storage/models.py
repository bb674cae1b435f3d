"""Database tables. Times from the protocol stay integer milliseconds; bookkeeping times are UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the tables use."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


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


class Device(Base):
    """An edge agent: registered through the API, kept current from its MQTT topics."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
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


class Play(Base):
    """Proof of play: what an agent reports it actually played, and when (one row per attempt)."""

    __tablename__ = "plays"
    __table_args__ = (UniqueConstraint("agent_id", "play_id", "attempt"),
                      Index("ix_plays_actual_start", "actual_start_ms"),
                      Index("ix_plays_scheduled_start", "scheduled_start_ms"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
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


class Zone(Base):
    """A named group of agents (cụm loa) with its quiet hours and volumes by time of day."""

    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
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


class SignContent(Base):
    """What an LED board shows: pages of text or images (``devices.led.content.SignPage`` as JSON)."""

    __tablename__ = "sign_contents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
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


class Camera(Base):
    """A camera attached to an agent and a zone; its password is a Fernet token, never plain text."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CameraEvent(Base):
    """Motion seen by the gateway (with a stored snapshot), or a camera's fault and recovery."""

    __tablename__ = "camera_events"
    __table_args__ = (Index("ix_camera_events_camera_ts", "camera_id", "ts_ms"),
                      Index("ix_camera_events_ts", "ts_ms"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
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
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(256))
    host: Mapped[str] = mapped_column(String(253))
    xaddrs: Mapped[list[Any]] = mapped_column(default=list)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    types: Mapped[list[Any]] = mapped_column(default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


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


class LiveSession(Base):
    """A live broadcast (phát trực tiếp from a microphone, or a relay started on demand) and its record."""

    __tablename__ = "live_sessions"
    __table_args__ = (Index("ix_live_sessions_started_at", "started_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
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
