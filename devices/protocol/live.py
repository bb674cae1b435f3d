"""Live sessions on the speakers: ``speaker.live`` and ``speaker.live_end``."""

from __future__ import annotations

from pydantic import Field, field_validator

from devices.protocol.fields import Priority, Strict
from devices.protocol.segments import valid_relay_url


class SpeakerLive(Strict):
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


class SpeakerLiveEnd(Strict):
    """``speaker.live_end``: the live session ended; stop its play now."""

    session_id: str = Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
