"""The MQTT contract shared by the controller and every agent.

One package holds the topic tree, the envelope, the payload models of every message type and the
Ed25519 signing rules, so neither side can drift from the other. ``docs/protocol.md`` describes the
same contract for people; a test checks the two agree. Import from here: the modules are

- ``topics``: ids, the topic tree, ``parse_topic``; ``errors``: ``ProtocolError``;
- ``fields``: the strict model base, ``Priority``, id field types, ``now_ms``;
- ``segments``: the parts of a programme (recordings, relay windows) and the one relay-URL check;
- one module per message family: ``status`` (status/info/state), ``speaker`` (plays and proof of play),
  ``live``, ``schedule`` (the window), ``signs``, ``cameras``, ``events`` (errors, acks), ``ops`` (remote
  operations, ping, replies);
- ``messages``: which model each type carries; ``envelope``: the envelope and parsing; ``signing``: keys,
  ``Signer`` and ``Verifier``.
"""

from __future__ import annotations

from devices.protocol.cameras import (
    MAX_CAMERAS_PER_EVENT,
    MAX_SCOPES,
    MAX_TYPES,
    MAX_XADDRS,
    CameraDiscover,
    CameraDiscovered,
    DiscoveredCamera,
    QNameText,
    Scope,
    XAddr,
    valid_host,
    valid_xaddr,
)
from devices.protocol.envelope import (
    ATTACHMENT_MAX_BYTES,
    MAX_PAYLOAD_BYTES,
    Envelope,
    make_event,
    new_message_id,
    parse_envelope,
    parse_event,
    parse_json_object,
    parse_model,
)
from devices.protocol.errors import ProtocolError
from devices.protocol.events import AgentError, EventsAck
from devices.protocol.fields import AgentId, PlayId, Priority, Sha256Hex, now_ms
from devices.protocol.live import SpeakerLive, SpeakerLiveEnd
from devices.protocol.messages import ATTACHMENT_TYPES, COMMAND_MODELS, EVENT_MODELS
from devices.protocol.ops import (
    MAX_REPLY_DATA_BYTES,
    RESTART_EXIT_CODE,
    OpsAmplifier,
    OpsLogs,
    OpsReload,
    OpsRestart,
    OpsTone,
    OpsVolume,
    Ping,
    Reply,
)
from devices.protocol.schedule import MAX_STANDBY, MAX_WINDOW_PLAYS, ScheduledPlay, ScheduleWindow
from devices.protocol.segments import MAX_SEGMENT_MS, MediaSegment, RelaySegment, Segment, valid_relay_url
from devices.protocol.signing import (
    CLOCK_SKEW_MS,
    Signer,
    VerifiedCommand,
    Verifier,
    public_key_from_text,
    public_key_to_text,
)
from devices.protocol.signs import SignNow, SignPlaylist, SignPlaylistEntry, SignStatus
from devices.protocol.speaker import PlayFinished, PlayOutcome, PlayStarted, SpeakerPlay, SpeakerStop
from devices.protocol.status import (
    AgentStatus,
    InfoPayload,
    NowPlaying,
    OutputInfo,
    StatePayload,
    StatusPayload,
    status_payload,
)
from devices.protocol.topics import (
    ALL_ZONE,
    ID_PATTERN,
    MAX_TARGET_CHARS,
    PROTOCOL_VERSION,
    SCHEDULE_TYPE,
    SIGNS_TYPE,
    TOPIC_ROOT,
    ZONE_TARGET_PREFIX,
    TopicInfo,
    Topics,
    parse_topic,
    target_zones,
    valid_id,
    valid_sha256,
    zone_target,
)

__all__ = [
    "ALL_ZONE",
    "ATTACHMENT_MAX_BYTES",
    "ATTACHMENT_TYPES",
    "CLOCK_SKEW_MS",
    "COMMAND_MODELS",
    "EVENT_MODELS",
    "ID_PATTERN",
    "MAX_CAMERAS_PER_EVENT",
    "MAX_PAYLOAD_BYTES",
    "MAX_REPLY_DATA_BYTES",
    "MAX_SCOPES",
    "MAX_SEGMENT_MS",
    "MAX_STANDBY",
    "MAX_TARGET_CHARS",
    "MAX_TYPES",
    "MAX_WINDOW_PLAYS",
    "MAX_XADDRS",
    "PROTOCOL_VERSION",
    "RESTART_EXIT_CODE",
    "SCHEDULE_TYPE",
    "SIGNS_TYPE",
    "TOPIC_ROOT",
    "ZONE_TARGET_PREFIX",
    "AgentError",
    "AgentId",
    "AgentStatus",
    "CameraDiscover",
    "CameraDiscovered",
    "DiscoveredCamera",
    "Envelope",
    "EventsAck",
    "InfoPayload",
    "MediaSegment",
    "NowPlaying",
    "OpsAmplifier",
    "OpsLogs",
    "OpsReload",
    "OpsRestart",
    "OpsTone",
    "OpsVolume",
    "OutputInfo",
    "Ping",
    "PlayFinished",
    "PlayId",
    "PlayOutcome",
    "PlayStarted",
    "Priority",
    "ProtocolError",
    "QNameText",
    "RelaySegment",
    "Reply",
    "ScheduleWindow",
    "ScheduledPlay",
    "Scope",
    "Segment",
    "Sha256Hex",
    "SignNow",
    "SignPlaylist",
    "SignPlaylistEntry",
    "SignStatus",
    "Signer",
    "SpeakerLive",
    "SpeakerLiveEnd",
    "SpeakerPlay",
    "SpeakerStop",
    "StatePayload",
    "StatusPayload",
    "TopicInfo",
    "Topics",
    "VerifiedCommand",
    "Verifier",
    "XAddr",
    "make_event",
    "new_message_id",
    "now_ms",
    "parse_envelope",
    "parse_event",
    "parse_json_object",
    "parse_model",
    "parse_topic",
    "public_key_from_text",
    "public_key_to_text",
    "status_payload",
    "target_zones",
    "valid_host",
    "valid_id",
    "valid_relay_url",
    "valid_sha256",
    "valid_xaddr",
    "zone_target",
]
