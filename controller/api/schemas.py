"""Request and response bodies: ``*Create`` comes in, ``*Public`` goes out; nothing secret goes out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from controller.storage.models.units import FIRST_WARD
from devices.geo import (
    Latitude,
    LocationChange,
    LocationPair,
    Longitude,
    change_json_schema,
    pair_json_schema,
)
from devices.protocol import ALL_ZONE, ID_PATTERN, Priority


def ms_iso(ms: int | None) -> datetime | None:
    """Protocol milliseconds → aware UTC datetime (None passes through)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_reserved(value: str) -> str:
    if value == ALL_ZONE:
        raise ValueError(f'"{ALL_ZONE}" is the whole fleet, not a zone name (use "all": true to reach everyone)')
    return value


#: A ward's unit id, named by staff of several wards when they create something.
WardField = Annotated[str | None, Field(pattern=ID_PATTERN, max_length=63,
                                        description="the ward this belongs to (a unit id); needed only by staff "
                                                    "of several wards")]

#: A zone's name: a topic segment, and never ``all`` (the group every agent is in).
ZoneName = Annotated[str, Field(pattern=ID_PATTERN), AfterValidator(_not_reserved)]


class TargetsIn(_In):
    """Who hears it: every agent, or zones and/or agents."""

    # The rule of _one_kind, in the document: all and no lists, or not all and a list with something in it.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["all"], "properties": {"all": {"const": True}, "zones": {"maxItems": 0},
                                              "agents": {"maxItems": 0}}},
        {"required": ["zones"], "properties": {"all": {"const": False}, "zones": {"minItems": 1}}},
        {"required": ["agents"], "properties": {"all": {"const": False}, "agents": {"minItems": 1}}}]})

    all: StrictBool = False
    zones: list[ZoneName] = Field(default_factory=list, max_length=200)
    agents: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _one_kind(self) -> TargetsIn:
        if self.all == bool(self.zones or self.agents):
            raise ValueError('give either "all": true or some zones/agents')
        return self


#: A character that is neither white space nor a control character: text holding one is not empty once
#: trimmed (what ``normalize_text`` leaves). Whether a voice finds words in it is the normaliser's to say.
VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f]"


def text_or_recording(schema: dict[str, Any]) -> None:
    """JSON schema of an announcement: text that is not empty, unless a recording plays instead."""
    schema["anyOf"] = [{"required": ["recording"], "properties": {"recording": {"type": "string"}}},
                       {"required": ["text"], "properties": {"text": {"pattern": VISIBLE}}}]


class AnnouncementCreate(_In):
    """Text to broadcast now or at a time."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=text_or_recording)

    text: str = Field(default="", max_length=100_000,
                      description="Vietnamese text to read aloud (the site's limit applies, default 5,000); "
                                  "with `recording`, a description of it")
    recording: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                  description="sha256 of a stored recording to play instead of speech")
    targets: Annotated[list[str], Field(min_length=1, max_length=1000)] | TargetsIn = Field(
        description='who hears it: {"all": true} or {"zones": [...], "agents": [...]}; '
                    'the older list form ["all"] or ["agent-id", ...] is accepted too')
    priority: Priority = Priority.NORMAL
    start_at: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset; absent = now")
    ward: WardField = None

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, value: list[str] | TargetsIn) -> list[str] | TargetsIn:
        if isinstance(value, list) and not 1 <= len(value) <= 1000:
            raise ValueError("targets should have at least 1 entry and at most 1000")
        return value

    def target_names(self) -> list[str]:
        """The targets as stored: ``"all"``, agent ids and ``"zone:{name}"``."""
        if isinstance(self.targets, list):
            return list(self.targets)
        if self.targets.all:
            return ["all"]
        return [f"zone:{z}" for z in dict.fromkeys(self.targets.zones)] + list(dict.fromkeys(self.targets.agents))


class AnnouncementAccepted(BaseModel):
    """202 body."""

    id: str
    status: str
    targets: list[str]


class PlayPublic(BaseModel):
    """One proof-of-play row."""

    agent_id: str
    play_id: str
    attempt: int = Field(description="0, or how many times it was played again after a pre-emption")
    announcement_id: str | None
    item_id: str | None
    sha256: str | None
    priority: str
    output: str
    scheduled_start: datetime | None
    actual_start: datetime | None
    ended_at: datetime | None
    start_offset_ms: int | None = Field(description="actual − scheduled start")
    duration_ms: int | None = Field(description="how long it sounded")
    outcome: str | None
    reason: str | None
    ward: str = Field(default=FIRST_WARD, description="the ward its agent was in when it played")


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
    standby: bool = Field(default=False, description="a standby alarm every agent keeps, ready to play")


class StandbyUpdate(_In):
    """Whether every agent keeps this recording ready for an emergency."""

    standby: bool


class SpeechPreviewRequest(_In):
    """Text to hear before sending."""

    text: str = Field(max_length=100_000, pattern=VISIBLE)
    ward: WardField = None


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
    ward: str = Field(default=FIRST_WARD, description="the ward it belongs to")


class DeviceCreate(_In, LocationPair):
    """Registers an agent; its token is returned once."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=pair_json_schema)

    id: str = Field(pattern=ID_PATTERN, description="agent id, also its MQTT topic segment")
    name: str = Field(default="", max_length=200)
    zones: list[ZoneName] = Field(default_factory=list, max_length=50)
    #: A board profile from firmware_configs/ (sent to the device at enrolment).
    board_profile: str | None = Field(default=None, pattern=ID_PATTERN)
    ward: WardField = None
    #: Where it stands; absent: its board profile's default location, if it has one.
    lat: Latitude | None = None
    lon: Longitude | None = None


class DeviceUpdate(_In, LocationChange):
    """Changes to a registered agent; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=change_json_schema)

    name: str | None = Field(default=None, max_length=200)
    zones: list[ZoneName] | None = Field(default=None, max_length=50)
    board_profile: str | None = Field(default=None, pattern=ID_PATTERN)
    ward: str | None = Field(default=None, pattern=ID_PATTERN, max_length=63,
                             description="move it to this ward: its zones are cleared and its credentials "
                                         "rotated (enrol it again); technician in both wards")
    #: A new location (both given), or none (both null); absent: unchanged.
    lat: Latitude | None = None
    lon: Longitude | None = None

    def location_given(self) -> bool:
        """Whether the body sets (or clears) the location."""
        return "lat" in self.model_fields_set


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
    board_profile: str | None = None
    ward: str = Field(default=FIRST_WARD, description="the ward it belongs to")
    #: When it was revoked (no broker access, no token) until it is enrolled again.
    revoked_at: datetime | None = None
    #: Proof of play it sent for plays it was never given (not stored as plays), and the last time.
    suspicious_plays: int = 0
    suspicious_at: datetime | None = None
    #: Its messages the controller's inbox dropped, over its rate or its share (it resends events).
    inbox_dropped: int = 0
    #: Where it stands (WGS 84 degrees); null: no location yet.
    lat: float | None = None
    lon: float | None = None


class DeviceRegistered(BaseModel):
    """201 body: everything an agent's config needs."""

    device: DevicePublic
    token: str = Field(description="shown once; put it in the agent's config")
    controller_public_key: str
    controller_url: str
    mqtt_host: str
    mqtt_port: int
    #: Its broker account (username = its id); the password is shown once, only its hash is kept.
    mqtt_username: str
    mqtt_password: str


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
    ward: str = Field(default=FIRST_WARD, description="the ward it belongs to")


class Health(BaseModel):
    """Liveness and the state of the links."""

    status: str
    mqtt: str
    database: str
    version: str


# ---------------------------------------------------------------------------------------- schedules


# What an item's content may be, before the controller resolves it into the protocol's segments
# (devices.protocol.segments): the limits here are those segments' limits.
