"""Which payload model each message type carries: the table both sides route and validate by.

A new message type is one model in its family's module, one line here, and its section in docs/protocol.md §4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel

from devices.protocol.cameras import CameraDiscover, CameraDiscovered
from devices.protocol.events import AgentError, EventsAck
from devices.protocol.live import SpeakerLive, SpeakerLiveEnd
from devices.protocol.ops import AgentGroups, OpsAmplifier, OpsLogs, OpsReload, OpsRestart, OpsTone, OpsVolume, Ping
from devices.protocol.schedule import ScheduleWindow
from devices.protocol.signs import SignPlaylist, SignStatus
from devices.protocol.speaker import PlayFinished, PlayStarted, SpeakerPlay, SpeakerStop
from devices.protocol.topics import SCHEDULE_TYPE, SIGNS_TYPE

COMMAND_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "speaker.play": SpeakerPlay,
    "speaker.stop": SpeakerStop,
    "speaker.live": SpeakerLive,
    "speaker.live_end": SpeakerLiveEnd,
    "events.ack": EventsAck,
    "agent.ping": Ping,
    "agent.groups": AgentGroups,
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

#: Command types whose data names the media an attachment must be (``sha256`` and ``size``).
ATTACHMENT_TYPES: Final = frozenset({"speaker.play"})
