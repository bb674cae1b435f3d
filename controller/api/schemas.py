"""Request and response bodies: ``*Create`` comes in, ``*Public`` goes out; nothing secret goes out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from devices.protocol import ID_PATTERN, Priority


def ms_iso(ms: int | None) -> datetime | None:
    """Protocol milliseconds → aware UTC datetime (None passes through)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnnouncementCreate(_In):
    """Text to broadcast now or at a time."""

    text: str = Field(max_length=100_000, description="Vietnamese text; the site's limit applies (default 5,000)")
    targets: list[str] = Field(min_length=1, max_length=1000, description='agent ids, or ["all"]')
    priority: Priority = Priority.NORMAL
    start_at: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset; absent = now")


class AnnouncementAccepted(BaseModel):
    """202 body."""

    id: str
    status: str
    targets: list[str]


class PlayPublic(BaseModel):
    """One proof-of-play row."""

    agent_id: str
    play_id: str
    announcement_id: str | None
    sha256: str
    priority: str
    output: str
    scheduled_start: datetime | None
    actual_start: datetime | None
    ended_at: datetime | None
    start_offset_ms: int | None = Field(description="actual − scheduled start")
    outcome: str | None
    reason: str | None


class DeliveryPublic(BaseModel):
    """How far one target got."""

    agent_id: str
    command_id: str
    status: str
    error: str | None
    updated_at: datetime
    play: PlayPublic | None


class MediaPublic(BaseModel):
    """A stored media file."""

    sha256: str
    size: int
    duration_ms: int
    mime: str
    url: str
    source: str = Field(description="engine:voice for speech, upload for recordings")
    loudness_lufs: float | None


class SpeechPreviewRequest(_In):
    """Text to hear before sending."""

    text: str = Field(max_length=100_000)


class SpeechPreview(BaseModel):
    """What the speakers would say, and a URL to hear it."""

    text: str
    spoken_text: str
    engine: str
    cached: bool
    media: MediaPublic


class AnnouncementPublic(BaseModel):
    """An announcement with per-target delivery status."""

    id: str
    text: str
    spoken_text: str | None
    priority: str
    targets: list[str]
    status: str
    error: str | None
    requested_start: datetime | None
    start_at: datetime | None
    engine: str | None
    media: MediaPublic | None
    created_at: datetime
    deliveries: list[DeliveryPublic]


class DeviceCreate(_In):
    """Registers an agent; its token is returned once."""

    id: str = Field(pattern=ID_PATTERN, description="agent id, also its MQTT topic segment")
    name: str = Field(default="", max_length=200)
    zones: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=50)


class DevicePublic(BaseModel):
    """An agent as the fleet registry knows it."""

    id: str
    name: str
    zones: list[str]
    enabled: bool
    status: str
    online: bool
    status_changed_at: datetime | None
    last_seen_at: datetime | None
    version: str | None
    hostname: str | None
    capabilities: list[str]
    outputs: list[dict[str, Any]]
    state: dict[str, Any] | None


class DeviceRegistered(BaseModel):
    """201 body: everything an agent's config needs."""

    device: DevicePublic
    token: str = Field(description="shown once; put it in the agent's config")
    controller_public_key: str
    controller_url: str
    mqtt_host: str
    mqtt_port: int


class LoginRequest(_In):
    """Console login."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResult(BaseModel):
    """A session token for the console."""

    token: str
    expires_at: datetime
    username: str
    role: str


class AnnouncementSummary(BaseModel):
    """One line of the announcements list."""

    id: str
    text: str
    priority: str
    status: str
    start_at: datetime | None
    created_at: datetime
    media_sha256: str | None
    deliveries: dict[str, int] = Field(description="how many deliveries are in each state")


class Health(BaseModel):
    """Liveness and the state of the links."""

    status: str
    mqtt: str
    database: str
    version: str
