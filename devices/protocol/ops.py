"""Remote operations (``ops.*``), the ``agent.ping`` check, and the reply that answers every command."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field

from devices.protocol.fields import AgentId, Priority, Strict


class Ping(Strict):
    """``agent.ping``: answered with a reply; used to check the signed path end to end."""


class AgentGroups(Strict):
    """``agent.groups``: the ward and zones whose group topics the agent listens on from now on.

    The controller sends it to an agent whose ``info`` shows other groups than its registry holds (an agent
    enrolled before wards, or one whose zones changed); the agent keeps it across restarts, moves its
    subscriptions and republishes its ``info``.
    """

    ward: AgentId
    zones: list[AgentId] = Field(default_factory=list, max_length=256)


class OpsVolume(Strict):
    """``ops.volume``: the agent's default volume from now on, kept across restarts."""

    volume: int = Field(ge=0, le=100)


class OpsTone(Strict):
    """``ops.tone``: a generated sine tone through the real output, with proof of play like any play."""

    frequency_hz: int = Field(default=1000, ge=50, le=8000)
    duration_ms: int = Field(default=2000, ge=100, le=30_000)
    priority: Priority = Priority.NORMAL
    volume: int | None = Field(default=None, ge=0, le=100)


class OpsRestart(Strict):
    """``ops.restart``: the agent replies, stops cleanly and exits with ``RESTART_EXIT_CODE``."""

    reason: str = Field(default="", max_length=200)


class OpsReload(Strict):
    """``ops.reload``: re-read the config file and apply what can change while running."""


class OpsAmplifier(Strict):
    """``ops.amp``: switch the amplifier's power relay on (held until switched off) or off."""

    on: bool


class OpsLogs(Strict):
    """``ops.logs``: the last ``lines`` lines of the agent's own log, in the reply's ``data``."""

    lines: int = Field(default=100, ge=1, le=500)


#: An agent asked to restart exits with this code (EX_TEMPFAIL); systemd's Restart=always starts it again.
RESTART_EXIT_CODE: Final = 75
#: A reply's ``data`` object is at most this big once serialised (a log tail is cut to fit).
MAX_REPLY_DATA_BYTES: Final = 64 * 1024


class Reply(Strict):
    """Body of ``lp/v1/agent/{id}/reply``: the answer to one command."""

    id: str
    status: Literal["ok", "error"]
    error: str | None = None
    ts: int
    #: What a remote operation returns (``ops.*``): the new volume, a log tail…; absent otherwise.
    data: dict[str, Any] | None = None
