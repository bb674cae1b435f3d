"""What an agent says about itself on its retained topics: ``…/status``, ``…/info`` and ``…/state``."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from devices.protocol.fields import AgentId, Priority, Sha256Hex, Strict, now_ms
from devices.protocol.signs import SignNow
from devices.protocol.topics import PROTOCOL_VERSION


class AgentStatus(StrEnum):
    """Availability values of ``…/status``."""

    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


class StatusPayload(Strict):
    """Body of ``lp/v1/agent/{id}/status`` and ``lp/v1/controller/status`` (retained)."""

    status: AgentStatus
    ts: int | None = Field(default=None, description="ms since epoch; absent in a will")


class OutputInfo(Strict):
    """One audio output an agent drives."""

    name: str
    kind: Literal["file", "alsa"]


class InfoPayload(Strict):
    """Body of ``lp/v1/agent/{id}/info`` (retained)."""

    agent_id: AgentId
    version: str
    protocol: int = PROTOCOL_VERSION
    hostname: str = ""
    capabilities: list[str] = Field(default_factory=list)
    zones: list[AgentId] = Field(default_factory=list)
    outputs: list[OutputInfo] = Field(default_factory=list)


class NowPlaying(Strict):
    """What a speaker is playing at this moment (``sha256`` is null for a relay)."""

    play_id: str
    sha256: Sha256Hex | None
    priority: Priority
    started_at: int
    announcement_id: str | None = None
    item_id: str | None = None
    title: str = ""


class StatePayload(Strict):
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


def status_payload(status: AgentStatus, with_ts: bool = True) -> bytes:
    """Body for a status topic; the will has no ``ts`` because it is written before connecting."""
    body = StatusPayload(status=status, ts=now_ms() if with_ts else None)
    return body.model_dump_json(exclude_none=True).encode()
