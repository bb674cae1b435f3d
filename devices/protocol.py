"""The MQTT contract shared by the controller and every agent.

One module holds the topic tree, the envelope, the payload models of every message type and the
Ed25519 signing rules, so neither side can drift from the other. ``docs/protocol.md`` describes the
same contract for people; a test checks the two agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devices.led.content import MAX_PAGES, SignPage

PROTOCOL_VERSION: Final = 1
TOPIC_ROOT: Final = f"lp/v{PROTOCOL_VERSION}"

#: Ids that become topic segments: lower-case letters, digits, ``_`` and ``-``.
ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID_RE: Final = re.compile(ID_PATTERN)
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
#: The broker's and clients' hard ceiling for one payload; anything larger is refused unread.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
#: Tolerated difference between the controller's and an agent's clocks when checking ``ts``.
CLOCK_SKEW_MS: Final = 120_000

AgentId = Annotated[str, Field(pattern=ID_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: Play ids: a command's id, or ``{item}-{revision}-{start ms}`` for a scheduled occurrence.
PlayId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
#: Longest single media or relay segment (a relay window of a whole day).
MAX_SEGMENT_MS: Final = 24 * 3600 * 1000
#: The group every agent belongs to: ``lp/v1/group/all/cmd/…`` reaches the whole fleet with one publish.
#: No zone may take this name.
ALL_ZONE: Final = "all"
#: ``to`` of a command for zones: ``zone:{name}`` or ``zone:{a},{b}`` (one envelope, sent to each zone's topic).
ZONE_TARGET_PREFIX: Final = "zone:"
MAX_TARGET_CHARS: Final = 4096
#: Largest attachment a command may carry (an alarm's audio: then no speaker waits on a download and one
#: publish reaches them all). Its base64 text stays well under the payload ceiling.
ATTACHMENT_MAX_BYTES: Final = 128 * 1024


_M = TypeVar("_M", bound=BaseModel)


class ProtocolError(ValueError):
    """A message that breaks the contract; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def valid_id(value: str) -> bool:
    """True when ``value`` may be used as an agent id or a zone name (a single topic segment)."""
    return bool(_ID_RE.match(value))


def valid_sha256(value: str) -> bool:
    """True when ``value`` is a lower-case hex SHA-256 digest."""
    return bool(_SHA256_RE.match(value))


def zone_target(zones: Sequence[str]) -> str:
    """The ``to`` of one command for one or more zones: ``zone:a`` or ``zone:a,b``."""
    if not zones:
        raise ProtocolError("bad_target", "no zones")
    target = ZONE_TARGET_PREFIX + ",".join(_require_id(z, "zone") for z in dict.fromkeys(zones))
    if len(target) > MAX_TARGET_CHARS:
        raise ProtocolError("bad_target", f"{len(zones)} zones do not fit one envelope")
    return target


def target_zones(to: str | None) -> frozenset[str]:
    """The zones a ``to`` of the ``zone:…`` form names; empty for an agent id or anything malformed."""
    if not to or not to.startswith(ZONE_TARGET_PREFIX):
        return frozenset()
    zones = to[len(ZONE_TARGET_PREFIX):].split(",")
    return frozenset(zones) if all(valid_id(z) for z in zones) else frozenset()


def _require_id(value: str, what: str = "id") -> str:
    if not valid_id(value):
        raise ProtocolError("bad_id", f"{what} {value!r} does not match {ID_PATTERN}")
    return value


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch, the unit of every timestamp."""
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------------------------- topics


class Topics:
    """Builds every topic of the tree; the only place a topic string is spelled out."""

    @staticmethod
    def agent(agent_id: str, leaf: str) -> str:
        """``lp/v1/agent/{id}/{leaf}`` with the id validated."""
        return f"{TOPIC_ROOT}/agent/{_require_id(agent_id, 'agent id')}/{leaf}"

    @classmethod
    def status(cls, agent_id: str) -> str:
        """Retained availability of an agent: online / offline (will) / stopped."""
        return cls.agent(agent_id, "status")

    @classmethod
    def info(cls, agent_id: str) -> str:
        """Retained description of an agent: version, capabilities, outputs, zones."""
        return cls.agent(agent_id, "info")

    @classmethod
    def state(cls, agent_id: str) -> str:
        """Retained live state of an agent: volume, now playing."""
        return cls.agent(agent_id, "state")

    @classmethod
    def schedule(cls, agent_id: str) -> str:
        """Retained, signed window of upcoming plays for one agent (``schedule.window``)."""
        return cls.agent(agent_id, "schedule")

    @classmethod
    def signs(cls, agent_id: str) -> str:
        """Retained, signed playlist of what one agent's LED signs show (``sign.playlist``)."""
        return cls.agent(agent_id, "signs")

    @classmethod
    def command(cls, agent_id: str, msg_type: str) -> str:
        """Signed controller → agent command."""
        return cls.agent(agent_id, f"cmd/{_require_type(msg_type)}")

    @classmethod
    def event(cls, agent_id: str, msg_type: str) -> str:
        """Agent → controller event (proof of play, errors)."""
        return cls.agent(agent_id, f"event/{_require_type(msg_type)}")

    @classmethod
    def reply(cls, agent_id: str) -> str:
        """Agent's answers to commands, correlated by the command's id."""
        return cls.agent(agent_id, "reply")

    @staticmethod
    def group_command(zone: str, msg_type: str) -> str:
        """Signed controller → zone command: one publish reaches every agent of the zone."""
        return f"{TOPIC_ROOT}/group/{_require_id(zone, 'zone')}/cmd/{_require_type(msg_type)}"

    CONTROLLER_STATUS: Final = f"{TOPIC_ROOT}/controller/status"

    #: What the controller subscribes to.
    CONTROLLER_SUBSCRIPTIONS: Final = (
        f"{TOPIC_ROOT}/agent/+/status",
        f"{TOPIC_ROOT}/agent/+/info",
        f"{TOPIC_ROOT}/agent/+/state",
        f"{TOPIC_ROOT}/agent/+/event/+",
        f"{TOPIC_ROOT}/agent/+/reply",
    )

    @classmethod
    def agent_subscriptions(cls, agent_id: str, zones: list[str]) -> list[str]:
        """What an agent subscribes to: its own commands, its zones' commands, the controller status."""
        subs = [cls.agent(agent_id, "cmd/+"), cls.schedule(agent_id), cls.CONTROLLER_STATUS]
        subs.append(cls.signs(agent_id))
        subs += [f"{TOPIC_ROOT}/group/{_require_id(z, 'zone')}/cmd/+" for z in dict.fromkeys([ALL_ZONE, *zones])]
        return subs


_TYPE_RE: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
#: The one message type carried on ``…/schedule`` rather than ``…/cmd/{type}``.
SCHEDULE_TYPE: Final = "schedule.window"
#: The one message type carried on ``…/signs``.
SIGNS_TYPE: Final = "sign.playlist"


def _require_type(msg_type: str) -> str:
    if not _TYPE_RE.match(msg_type):
        raise ProtocolError("bad_type", f"message type {msg_type!r}")
    return msg_type


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A parsed topic: ``kind`` is status/info/state/cmd/event/reply/controller_status."""

    kind: str
    agent_id: str | None = None
    zone: str | None = None
    msg_type: str | None = None


def parse_topic(topic: str) -> TopicInfo:
    """Splits a topic of the tree into its parts; raises :class:`ProtocolError` for anything else."""
    if topic == Topics.CONTROLLER_STATUS:
        return TopicInfo("controller_status")
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ProtocolError("bad_topic", topic)
    scope, ident, rest = parts[2], parts[3], parts[4:]
    if not valid_id(ident):
        raise ProtocolError("bad_topic", f"invalid id in {topic!r}")
    if scope == "agent":
        if len(rest) == 1 and rest[0] in ("status", "info", "state", "reply"):
            return TopicInfo(rest[0], agent_id=ident)
        if rest == ["schedule"]:
            return TopicInfo("schedule", agent_id=ident, msg_type=SCHEDULE_TYPE)
        if rest == ["signs"]:
            return TopicInfo("signs", agent_id=ident, msg_type=SIGNS_TYPE)
        if len(rest) == 2 and rest[0] in ("cmd", "event") and _TYPE_RE.match(rest[1]):
            return TopicInfo(rest[0], agent_id=ident, msg_type=rest[1])
    elif scope == "group" and len(rest) == 2 and rest[0] == "cmd" and _TYPE_RE.match(rest[1]):
        return TopicInfo("cmd", zone=ident, msg_type=rest[1])
    raise ProtocolError("bad_topic", topic)


# ------------------------------------------------------------------------------------------- payloads


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Priority(StrEnum):
    """TT39's three levels; a higher one pre-empts a lower one on the same speaker."""

    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """Ordering key: normal 0 < priority 1 < emergency 2."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: Final = {Priority.NORMAL: 0, Priority.PRIORITY: 1, Priority.EMERGENCY: 2}


class AgentStatus(StrEnum):
    """Availability values of ``…/status``."""

    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


class StatusPayload(_Strict):
    """Body of ``lp/v1/agent/{id}/status`` and ``lp/v1/controller/status`` (retained)."""

    status: AgentStatus
    ts: int | None = Field(default=None, description="ms since epoch; absent in a will")


class OutputInfo(_Strict):
    """One audio output an agent drives."""

    name: str
    kind: Literal["file", "alsa"]


class InfoPayload(_Strict):
    """Body of ``lp/v1/agent/{id}/info`` (retained)."""

    agent_id: AgentId
    version: str
    protocol: int = PROTOCOL_VERSION
    hostname: str = ""
    capabilities: list[str] = Field(default_factory=list)
    zones: list[AgentId] = Field(default_factory=list)
    outputs: list[OutputInfo] = Field(default_factory=list)


class NowPlaying(_Strict):
    """What a speaker is playing at this moment (``sha256`` is null for a relay)."""

    play_id: str
    sha256: Sha256Hex | None
    priority: Priority
    started_at: int
    announcement_id: str | None = None
    item_id: str | None = None
    title: str = ""


class SignNow(_Strict):
    """What one LED sign shows at this moment (part of the agent's state)."""

    sign: str = Field(max_length=63)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    #: playlist: an entry of ``sign.playlist``; announcement: the text of what the speaker plays; idle: dark.
    source: Literal["playlist", "announcement", "idle"]
    entry_id: str | None = None
    item_id: str | None = None
    priority: Priority | None = None
    page: int = Field(default=0, ge=0)
    pages: int = Field(default=0, ge=0)
    text: str = Field(default="", max_length=1000)
    since: int
    #: The driver's last fault (null while the sign works).
    fault: str | None = Field(default=None, max_length=300)


class StatePayload(_Strict):
    """Body of ``lp/v1/agent/{id}/state`` (retained)."""

    volume: int = Field(ge=0, le=100)
    now_playing: NowPlaying | None = None
    pending: int = Field(default=0, ge=0, description="plays waiting for their start time")
    unacked_events: int = Field(default=0, ge=0)
    schedule_version: int | None = None
    ts: int
    #: What each LED sign shows now (empty on agents without signs).
    signs: list[SignNow] = Field(default_factory=list, max_length=64)
    sign_playlist_version: int | None = None


# Commands (controller → agent) ----------------------------------------------------------------------


class SpeakerPlay(_Strict):
    """``speaker.play``: fetch ``/media/{sha256}`` from the controller and play it at ``start_at``."""

    announcement_id: str | None = None
    sha256: Sha256Hex
    size: int = Field(gt=0, le=512 * 1024 * 1024)
    duration_ms: int = Field(gt=0, le=24 * 3600 * 1000)
    mime: str = "audio/ogg"
    priority: Priority = Priority.NORMAL
    start_at: int = Field(description="absolute start, ms since epoch; every speaker starts together")
    volume: int | None = Field(default=None, ge=0, le=100)
    title: str = Field(default="", max_length=200)


class SpeakerStop(_Strict):
    """``speaker.stop``: stop what plays (and drop what waits) at or below ``priority``."""

    priority: Priority = Priority.EMERGENCY


class EventsAck(_Strict):
    """``events.ack``: the controller has stored these event ids; the agent may forget them."""

    ids: list[str] = Field(min_length=1, max_length=1000)


class Ping(_Strict):
    """``agent.ping``: answered with a reply; used to check the signed path end to end."""


class CameraDiscover(_Strict):
    """``camera.discover``: probe the agent's LAN for ONVIF cameras now (WS-Discovery) and report them."""

    timeout_ms: int = Field(default=3000, ge=200, le=30_000, description="how long to collect answers")


class SpeakerLive(_Strict):
    """``speaker.live``: play a live session's Icecast mount now, pre-empting lower priorities.

    The agent listens on ``url`` with ``?token=`` + ``token``, a token issued to this agent for this
    session (Icecast asks the controller whether the token opens that mount). The play's id is
    ``live-`` + ``session_id``. If the stream is lost for ``give_up_ms`` the agent stops and its schedule
    resumes; it never plays longer than ``max_duration_ms``.
    """

    session_id: str = Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    url: str = Field(max_length=2000)
    token: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    priority: Priority = Priority.PRIORITY
    max_duration_ms: int = Field(default=3 * 3600 * 1000, gt=0, le=24 * 3600 * 1000)
    give_up_ms: int = Field(default=4000, ge=500, le=60_000)
    volume: int | None = Field(default=None, ge=0, le=100)
    title: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not valid_relay_url(value) or "?" in value or "#" in value:
            raise ValueError("live url must be an absolute http(s) URL with a host and no query")
        return value


class SpeakerLiveEnd(_Strict):
    """``speaker.live_end``: the live session ended; stop its play now."""

    session_id: str = Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


def valid_relay_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host and nothing that could smuggle a second argument."""
    if len(url) > 2000 or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class MediaSegment(_Strict):
    """A stored recording or rendered speech, fetched from ``/media/{sha256}``."""

    kind: Literal["media"] = "media"
    sha256: Sha256Hex
    size: int = Field(gt=0, le=512 * 1024 * 1024)
    duration_ms: int = Field(gt=0, le=MAX_SEGMENT_MS)
    mime: str = Field(default="audio/ogg", max_length=64)
    title: str = Field(default="", max_length=200)


class RelaySegment(_Strict):
    """A live upstream stream (tiếp sóng) played for ``duration_ms``; reconnected if it drops."""

    kind: Literal["relay"] = "relay"
    url: str = Field(max_length=2000)
    duration_ms: int = Field(gt=0, le=MAX_SEGMENT_MS)
    title: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not valid_relay_url(value):
            raise ValueError("relay url must be an absolute http(s) URL with a host")
        return value


Segment = Annotated[MediaSegment | RelaySegment, Field(discriminator="kind")]


class ScheduledPlay(_Strict):
    """One concrete play in an agent's window: a programme of segments played back to back."""

    play_id: PlayId
    item_id: str | None = Field(default=None, max_length=64)
    priority: Priority = Priority.NORMAL
    start_at: int = Field(description="absolute start, ms since epoch")
    #: Latest moment the play may still start (or restart after a pre-emption); later it is skipped.
    latest_start: int
    segments: list[Segment] = Field(min_length=1, max_length=50)
    volume: int | None = Field(default=None, ge=0, le=100)
    title: str = Field(default="", max_length=200)

    @property
    def duration_ms(self) -> int:
        """Length of the whole programme."""
        return sum(seg.duration_ms for seg in self.segments)


#: Plays one window may carry; a window that would hold more ends earlier (it still fits the payload cap).
MAX_WINDOW_PLAYS: Final = 400
#: Standby alarm recordings a window may name (every agent keeps them, ready for an emergency).
MAX_STANDBY: Final = 20


class ScheduleWindow(_Strict):
    """``schedule.window`` on ``…/schedule`` (retained): every play the agent must make until ``window_end``.

    A newer ``version`` replaces the older window whole; the agent keeps playing the last window it
    accepted while the controller or the broker is unreachable.
    """

    version: int = Field(ge=1)
    window_start: int
    window_end: int
    plays: list[ScheduledPlay] = Field(default_factory=list, max_length=MAX_WINDOW_PLAYS)
    #: Alarm recordings to download now and keep, so an emergency that plays one needs nothing more.
    standby: list[MediaSegment] = Field(default_factory=list, max_length=MAX_STANDBY)


# Events (agent → controller) ------------------------------------------------------------------------


class PlayOutcome(StrEnum):
    """How a play ended."""

    COMPLETED = "completed"
    PREEMPTED = "preempted"
    STOPPED = "stopped"
    EXPIRED = "expired"
    FAILED = "failed"
    #: The agent died mid-play (crash, power loss): reported at its next start; ``ended_at`` is the last
    #: moment it recorded the play still sounding.
    CUT = "cut"


class PlayStarted(_Strict):
    """``play.started``: sound left the speaker at ``actual_start``.

    ``sha256`` is the first recording of the play (null for a relay); ``attempt`` counts restarts
    after a pre-emption or a cut (0 = first time).
    """

    play_id: str
    announcement_id: str | None = None
    item_id: str | None = None
    attempt: int = Field(default=0, ge=0)
    sha256: Sha256Hex | None
    priority: Priority
    scheduled_start: int
    actual_start: int
    output: str


class PlayFinished(_Strict):
    """``play.finished``: the play ended, how and when; ``actual_start`` is null if it never started."""

    play_id: str
    announcement_id: str | None = None
    item_id: str | None = None
    attempt: int = Field(default=0, ge=0)
    sha256: Sha256Hex | None
    priority: Priority
    scheduled_start: int
    actual_start: int | None
    ended_at: int
    outcome: PlayOutcome
    reason: str = ""
    output: str
    #: False when another attempt follows (a pre-empted or cut recording that will play again).
    final: bool = True


#: Bounds of one ``camera.discovered`` event; a larger find is sent as several events.
MAX_CAMERAS_PER_EVENT: Final = 32
MAX_XADDRS: Final = 4
MAX_SCOPES: Final = 16
MAX_TYPES: Final = 8
XAddr = Annotated[str, Field(min_length=8, max_length=256)]
Scope = Annotated[str, Field(min_length=1, max_length=200)]
QNameText = Annotated[str, Field(min_length=1, max_length=128)]


def valid_xaddr(url: str) -> bool:
    """True for an ONVIF service address: an absolute http(s) URL with a host, no spaces or controls."""
    return len(url) <= 256 and valid_relay_url(url)


def valid_host(host: str) -> bool:
    """True for an IP address or a DNS host name (what a camera is reached at)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME_RE.match(host))


_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE: Final = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


class DiscoveredCamera(_Strict):
    """One ONVIF device that answered a WS-Discovery probe on the agent's LAN."""

    endpoint: str = Field(min_length=1, max_length=256, description="WS-Addressing endpoint, e.g. urn:uuid:…")
    xaddrs: list[XAddr] = Field(min_length=1, max_length=MAX_XADDRS)
    scopes: list[Scope] = Field(default_factory=list, max_length=MAX_SCOPES)
    types: list[QNameText] = Field(default_factory=list, max_length=MAX_TYPES)
    host: str = Field(max_length=253, description="address the answer came from")

    @field_validator("xaddrs")
    @classmethod
    def _http_xaddrs(cls, value: list[str]) -> list[str]:
        for url in value:
            if not valid_xaddr(url):
                raise ValueError("xaddrs must be absolute http(s) URLs with a host")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not valid_host(value):
            raise ValueError("host must be an IP address or a host name")
        return value


class CameraDiscovered(_Strict):
    """``camera.discovered``: the ONVIF cameras one WS-Discovery round found (possibly none).

    ``ref`` is the ``camera.discover`` command id it answers, or null for a periodic probe;
    ``part``/``parts`` number the events of one round when it found more than one event holds;
    ``skipped`` counts answers that were dropped as malformed.
    """

    cameras: list[DiscoveredCamera] = Field(default_factory=list, max_length=MAX_CAMERAS_PER_EVENT)
    ref: str | None = Field(default=None, max_length=64)
    part: int = Field(default=1, ge=1, le=100)
    parts: int = Field(default=1, ge=1, le=100)
    skipped: int = Field(default=0, ge=0)


class AgentError(_Strict):
    """``error``: something the agent could not do; ``ref`` names the command it concerns."""

    code: str = Field(max_length=64)
    message: str = Field(max_length=1000)
    ref: str | None = None
    announcement_id: str | None = None


# LED signs ------------------------------------------------------------------------------------------


class SignPlaylistEntry(_Strict):
    """Content for some of an agent's signs from ``start_at`` until ``end_at`` (ms since epoch).

    ``signs`` names signs of this agent (its ``[[signs]]`` names); empty means every sign it has. Among
    the entries live at a moment, a sign shows those of the highest priority, their pages in turn.
    """

    entry_id: PlayId
    item_id: str | None = Field(default=None, max_length=64)
    title: str = Field(default="", max_length=200)
    signs: list[AgentId] = Field(default_factory=list, max_length=64)
    priority: Priority = Priority.NORMAL
    start_at: int
    end_at: int
    pages: list[SignPage] = Field(min_length=1, max_length=MAX_PAGES)


class SignPlaylist(_Strict):
    """``sign.playlist`` on ``…/signs`` (retained): every entry for this agent's signs until ``window_end``.

    A newer ``version`` replaces the older playlist whole; the agent keeps showing the last one it
    accepted while the link is down.
    """

    version: int = Field(ge=1)
    window_start: int
    window_end: int
    entries: list[SignPlaylistEntry] = Field(default_factory=list, max_length=MAX_WINDOW_PLAYS)


class SignStatus(_Strict):
    """``sign.status``: a sign failed (``ok`` false: port gone, no answer, page refused) or recovered."""

    sign: str = Field(max_length=63)
    ok: bool
    code: str = Field(max_length=64)
    message: str = Field(default="", max_length=1000)


# remote operations ----------------------------------------------------------------------------------


class OpsVolume(_Strict):
    """``ops.volume``: the agent's default volume from now on, kept across restarts."""

    volume: int = Field(ge=0, le=100)


class OpsTone(_Strict):
    """``ops.tone``: a generated sine tone through the real output, with proof of play like any play."""

    frequency_hz: int = Field(default=1000, ge=50, le=8000)
    duration_ms: int = Field(default=2000, ge=100, le=30_000)
    priority: Priority = Priority.NORMAL
    volume: int | None = Field(default=None, ge=0, le=100)


class OpsRestart(_Strict):
    """``ops.restart``: the agent replies, stops cleanly and exits with ``RESTART_EXIT_CODE``."""

    reason: str = Field(default="", max_length=200)


class OpsReload(_Strict):
    """``ops.reload``: re-read the config file and apply what can change while running."""


class OpsAmplifier(_Strict):
    """``ops.amp``: switch the amplifier's power relay on (held until switched off) or off."""

    on: bool


class OpsLogs(_Strict):
    """``ops.logs``: the last ``lines`` lines of the agent's own log, in the reply's ``data``."""

    lines: int = Field(default=100, ge=1, le=500)


#: An agent asked to restart exits with this code (EX_TEMPFAIL); systemd's Restart=always starts it again.
RESTART_EXIT_CODE: Final = 75
#: A reply's ``data`` object is at most this big once serialised (a log tail is cut to fit).
MAX_REPLY_DATA_BYTES: Final = 64 * 1024


COMMAND_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "speaker.play": SpeakerPlay,
    "speaker.stop": SpeakerStop,
    "speaker.live": SpeakerLive,
    "speaker.live_end": SpeakerLiveEnd,
    "events.ack": EventsAck,
    "agent.ping": Ping,
    "camera.discover": CameraDiscover,
    "ops.volume": OpsVolume,
    "ops.tone": OpsTone,
    "ops.restart": OpsRestart,
    "ops.reload": OpsReload,
    "ops.amp": OpsAmplifier,
    "ops.logs": OpsLogs,
    SCHEDULE_TYPE: ScheduleWindow,
    SIGNS_TYPE: SignPlaylist,
}

EVENT_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "play.started": PlayStarted,
    "play.finished": PlayFinished,
    "error": AgentError,
    "sign.status": SignStatus,
    "camera.discovered": CameraDiscovered,
}


# ------------------------------------------------------------------------------------------- envelope


class Envelope(_Strict):
    """Every command and event travels in one of these.

    ``ts``/``exp`` are integer milliseconds since the epoch so the signed bytes are the same in every
    language. ``to`` is an agent id or ``zone:{name}``; events carry the sender's id in ``to``'s place
    as ``from``. ``sig`` is base64url(Ed25519(canonical bytes of the envelope without ``sig``)).
    """

    v: Literal[1] = 1
    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    type: str = Field(pattern=_TYPE_RE.pattern)
    ts: int
    exp: int | None = None
    to: str | None = Field(default=None, max_length=MAX_TARGET_CHARS)
    sender: str | None = Field(default=None, alias="from", max_length=80)
    data: dict[str, Any] = Field(default_factory=dict)
    sig: str | None = None
    #: Commands that name media (``data.sha256``/``data.size``) may bring it along, standard base64. The
    #: signature covers it through that hash, not byte by byte: checking a 100 KB alarm costs one SHA-256.
    att: str | None = Field(default=None, max_length=(ATTACHMENT_MAX_BYTES + 2) // 3 * 4)

    # Strict: the signature covers the parsed form, so nothing may be coerced on the way in.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object as sent (``from`` spelled as on the wire, absent fields left out)."""
        # Only the envelope's own optional fields are left out when empty; a null inside ``data``
        # (``actual_start`` of a play that never started) is meaningful and must survive.
        return {k: v for k, v in self.model_dump(by_alias=True, mode="json").items() if v is not None}

    def to_bytes(self) -> bytes:
        """The payload to publish."""
        return json.dumps(self.wire(), ensure_ascii=False, separators=(",", ":")).encode()

    def signing_bytes(self) -> bytes:
        """Canonical form that is signed: sorted keys, no spaces, UTF-8, without ``sig`` and ``att``."""
        body = {k: v for k, v in self.wire().items() if k not in _UNSIGNED_FIELDS}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


#: Envelope fields outside the signed bytes: the signature itself, and the attachment (bound by its hash).
_UNSIGNED_FIELDS: Final = frozenset({"sig", "att"})
#: Command types whose data names the media an attachment must be (``sha256`` and ``size``).
ATTACHMENT_TYPES: Final = frozenset({"speaker.play"})


def _attachment(env: Envelope, data: BaseModel) -> bytes:
    """The attachment's bytes once they are proven to be the media the signed data names."""
    if env.type not in ATTACHMENT_TYPES:
        raise ProtocolError("bad_attachment", f"{env.type} carries no attachment")
    assert env.att is not None
    try:
        # strict_mode is checked in C; b64decode(validate=True) runs a regex over the whole text first.
        raw = binascii.a2b_base64(env.att, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_attachment", f"{env.id}: not base64") from None
    if len(raw) != getattr(data, "size", None) or hashlib.sha256(raw).hexdigest() != getattr(data, "sha256", None):
        raise ProtocolError("bad_attachment", f"{env.id}: not the media its signed data names")
    return raw


class Reply(_Strict):
    """Body of ``lp/v1/agent/{id}/reply``: the answer to one command."""

    id: str
    status: Literal["ok", "error"]
    error: str | None = None
    ts: int
    #: What a remote operation returns (``ops.*``): the new volume, a log tail…; absent otherwise.
    data: dict[str, Any] | None = None


def new_message_id() -> str:
    """A fresh, unguessable message id."""
    return uuid.uuid4().hex


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """Decodes a payload that must be one JSON object, refusing oversize and non-UTF-8 input."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("too_large", f"{len(payload)} bytes")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("not_json", str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", type(obj).__name__)
    return obj


def parse_envelope(payload: bytes) -> Envelope:
    """Parses an envelope without checking its signature."""
    obj = parse_json_object(payload)
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_envelope", _first_error(exc)) from None


def parse_model(model: type[_M], obj: Any) -> _M:
    """Validates ``obj`` against ``model``, turning validation errors into :class:`ProtocolError`."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_data", _first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg', '')}"[:300]


# ------------------------------------------------------------------------------------------- signing


def public_key_to_text(key: Ed25519PublicKey) -> str:
    """The form an agent's config names the controller's key in: base64 of the 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Reads a key written by :func:`public_key_to_text`."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 Ed25519 public key: {exc}") from None


class Signer:
    """The controller's side: builds signed command envelopes."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key agents verify with."""
        return self._key.public_key()

    def command(
        self,
        msg_type: str,
        data: BaseModel,
        *,
        to: str,
        ttl_ms: int,
        msg_id: str | None = None,
        ts: int | None = None,
        attachment: bytes | None = None,
    ) -> Envelope:
        """A signed command of ``msg_type`` for ``to`` (an agent id or ``zone:{a}[,{b}…]``).

        ``attachment`` is the media the data names (a ``speaker.play``'s recording), sent along.
        """
        if msg_type not in COMMAND_MODELS or not isinstance(data, COMMAND_MODELS[msg_type]):
            raise ProtocolError("bad_type", f"{msg_type} with {type(data).__name__}")
        ts = now_ms() if ts is None else ts
        unsigned = Envelope(
            id=msg_id or new_message_id(),
            type=msg_type,
            ts=ts,
            exp=ts + ttl_ms,
            to=to,
            data=data.model_dump(mode="json"),
            att=base64.b64encode(attachment).decode() if attachment is not None else None,
        )
        if attachment is not None:
            _attachment(unsigned, data)  # refuse to send what every agent would refuse
        sig = base64.urlsafe_b64encode(self._key.sign(unsigned.signing_bytes())).decode().rstrip("=")
        return unsigned.model_copy(update={"sig": sig})


@dataclass(frozen=True, slots=True)
class VerifiedCommand:
    """A command that passed every check, with its data parsed into the type's model."""

    envelope: Envelope
    data: BaseModel
    #: The attachment's bytes, already checked against the media the data names.
    attachment: bytes | None = None


class Verifier:
    """The agent's side: accepts a command only if it is signed, addressed here, fresh and new.

    ``seen`` answers whether an id was already accepted and remembers it until its expiry; the agent
    backs it with its on-disk store so a replay is refused across restarts too.
    """

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        agent_id: str,
        zones: list[str],
        seen: Callable[[str, int], bool],
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._key = public_key
        self._agent_id = agent_id
        self._zones = frozenset([ALL_ZONE, *zones])
        self._seen = seen
        self._clock = clock

    def verify(self, payload: bytes, topic_info: TopicInfo | None = None) -> VerifiedCommand:
        """Checks a command; raises ProtocolError naming the first check that failed.

        Order: envelope shape, signature, target (and that the topic it came on matches ``to``),
        type against topic, expiry, clock skew, data schema, and last replay.
        """
        env = parse_envelope(payload)
        if not env.sig:
            raise ProtocolError("unsigned", env.id)
        try:
            sig = base64.urlsafe_b64decode(env.sig + "=" * (-len(env.sig) % 4))
            self._key.verify(sig, env.signing_bytes())
        except (InvalidSignature, binascii.Error, ValueError):
            raise ProtocolError("bad_signature", env.id) from None
        zones = target_zones(env.to)
        if env.to != self._agent_id and not zones & self._zones:
            raise ProtocolError("wrong_target", f"{env.id} is for {env.to!r}")
        if topic_info is not None:
            # A command signed for one agent must not be replayed onto a zone's topic, nor the reverse;
            # one for zones arrives on the topic of one of them.
            on_topic = topic_info.zone in zones if topic_info.zone else env.to == topic_info.agent_id
            if not on_topic:
                where = f"zone {topic_info.zone}" if topic_info.zone else f"agent {topic_info.agent_id}"
                raise ProtocolError("wrong_target", f"{env.id} for {env.to!r} arrived on {where}'s topic")
        if topic_info is not None and topic_info.msg_type != env.type:
            raise ProtocolError("type_mismatch", f"topic says {topic_info.msg_type}, envelope {env.type}")
        now = self._clock()
        if env.exp is None or env.exp <= now:
            raise ProtocolError("expired", f"{env.id} expired at {env.exp}, now {now}")
        if env.ts > now + CLOCK_SKEW_MS:
            raise ProtocolError("from_future", f"{env.id} ts {env.ts}, now {now}")
        model = COMMAND_MODELS.get(env.type)
        if model is None:
            raise ProtocolError("unknown_type", env.type)
        data = parse_model(model, env.data)
        attachment = _attachment(env, data) if env.att is not None else None
        # Replay last: a forged copy of a real id must not poison the seen-set before it is verified.
        if self._seen(env.id, env.exp):
            raise ProtocolError("replayed", env.id)
        return VerifiedCommand(env, data, attachment)


def make_event(agent_id: str, msg_type: str, data: BaseModel, msg_id: str | None = None) -> Envelope:
    """An agent's event envelope (unsigned until agents get keys of their own)."""
    if msg_type not in EVENT_MODELS or not isinstance(data, EVENT_MODELS[msg_type]):
        raise ProtocolError("bad_type", f"{msg_type} with {type(data).__name__}")
    return Envelope.model_validate({
        "id": msg_id or new_message_id(),
        "type": msg_type,
        "ts": now_ms(),
        "from": agent_id,
        "data": data.model_dump(mode="json"),
    })


def parse_event(payload: bytes, topic_info: TopicInfo) -> tuple[Envelope, BaseModel]:
    """Validates an event from ``topic_info.agent_id``: envelope, sender, type and data."""
    env = parse_envelope(payload)
    if env.sender != topic_info.agent_id:
        raise ProtocolError("wrong_sender", f"{env.sender!r} on {topic_info.agent_id}'s topic")
    if env.type != topic_info.msg_type:
        raise ProtocolError("type_mismatch", f"topic says {topic_info.msg_type}, envelope {env.type}")
    model = EVENT_MODELS.get(env.type)
    if model is None:
        raise ProtocolError("unknown_type", env.type)
    return env, parse_model(model, env.data)


def status_payload(status: AgentStatus, with_ts: bool = True) -> bytes:
    """Body for a status topic; the will has no ``ts`` because it is written before connecting."""
    body = StatusPayload(status=status, ts=now_ms() if with_ts else None)
    return body.model_dump_json(exclude_none=True).encode()
