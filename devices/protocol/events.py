"""An agent's own events that are not proof of play, and the controller's acknowledgement of every event."""

from __future__ import annotations

from pydantic import Field

from devices.protocol.fields import Strict


class EventsAck(Strict):
    """``events.ack``: the controller has stored these event ids; the agent may forget them."""

    ids: list[str] = Field(min_length=1, max_length=1000)


class AgentError(Strict):
    """``error``: something the agent could not do; ``ref`` names the command it concerns."""

    code: str = Field(max_length=64)
    message: str = Field(max_length=1000)
    ref: str | None = None
    announcement_id: str | None = None
