"""Recordings on a speaker: the ``speaker.play`` / ``speaker.stop`` commands and the proof-of-play events."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from devices.protocol.fields import Priority, Sha256Hex, Strict
from devices.protocol.segments import DurationMs, MediaSize, Mime, Title


class SpeakerPlay(Strict):
    """``speaker.play``: fetch ``/media/{sha256}`` from the controller and play it at ``start_at``.

    The agent plays it as one :class:`~devices.protocol.segments.MediaSegment`, so the media fields have
    that segment's limits.
    """

    announcement_id: str | None = None
    sha256: Sha256Hex
    size: MediaSize
    duration_ms: DurationMs
    mime: Mime = "audio/ogg"
    priority: Priority = Priority.NORMAL
    start_at: int = Field(description="absolute start, ms since epoch; every speaker starts together")
    volume: int | None = Field(default=None, ge=0, le=100)
    title: Title = ""


class SpeakerStop(Strict):
    """``speaker.stop``: stop what plays (and drop what waits) at or below ``priority``."""

    priority: Priority = Priority.EMERGENCY


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


class PlayAttemptRef(Strict):
    """What both proof-of-play events say first: which attempt of which play they are about.

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


class PlayStarted(PlayAttemptRef):
    """``play.started``: sound left the speaker at ``actual_start``."""

    actual_start: int
    output: str


class PlayFinished(PlayAttemptRef):
    """``play.finished``: the play ended, how and when; ``actual_start`` is null if it never started."""

    actual_start: int | None
    ended_at: int
    outcome: PlayOutcome
    reason: str = ""
    output: str
    #: False when another attempt follows (a pre-empted or cut recording that will play again).
    final: bool = True
