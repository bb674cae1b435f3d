"""Live sessions on the speakers: ``speaker.live`` and ``speaker.live_end``."""

from __future__ import annotations

from typing import Final

from pydantic import Field, field_validator

from devices.protocol.fields import Priority, Strict
from devices.protocol.segments import MAX_URL_CHARS, DurationMs, Title, valid_relay_url

MAX_TOKEN_CHARS: Final = 128
#: Room is left for the ``?token=…`` the agent appends before it plays the stream as a relay segment.
MAX_LIVE_URL_CHARS: Final = MAX_URL_CHARS - len("?token=") - MAX_TOKEN_CHARS


class SpeakerLive(Strict):
    """``speaker.live``: play a live session's Icecast mount now, pre-empting lower priorities.

    The agent listens on ``url`` with ``?token=`` + ``token``, a token issued to this agent for this
    session (Icecast asks the controller whether the token opens that mount). The play's id is
    ``live-`` + ``session_id``. If the stream is lost for ``give_up_ms`` the agent stops and its schedule
    resumes; it never plays longer than ``max_duration_ms``. The agent plays it as one relay segment, so
    the URL with its token appended has that segment's limits.
    """

    session_id: str = Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    url: str = Field(max_length=MAX_LIVE_URL_CHARS)
    token: str = Field(min_length=16, max_length=MAX_TOKEN_CHARS, pattern=r"^[A-Za-z0-9_-]+$")
    priority: Priority = Priority.PRIORITY
    max_duration_ms: DurationMs = 3 * 3600 * 1000
    give_up_ms: int = Field(default=4000, ge=500, le=60_000)
    volume: int | None = Field(default=None, ge=0, le=100)
    title: Title = ""

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not valid_relay_url(value) or "?" in value or "#" in value:
            raise ValueError("live url must be an absolute http(s) URL with a host and no query")
        return value


class SpeakerLiveEnd(Strict):
    """``speaker.live_end``: the live session ended; stop its play now."""

    session_id: str = Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
