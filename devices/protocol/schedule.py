"""An agent's schedule window (``schedule.window`` on ``…/schedule``): every play it must make, ahead."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from devices.protocol.fields import PlayId, Priority, Strict
from devices.protocol.segments import MAX_SEGMENTS, MediaSegment, Segment, Title


class ScheduledPlay(Strict):
    """One concrete play in an agent's window: a programme of segments played back to back."""

    play_id: PlayId
    item_id: str | None = Field(default=None, max_length=64)
    priority: Priority = Priority.NORMAL
    start_at: int = Field(description="absolute start, ms since epoch")
    #: Latest moment the play may still start (or restart after a pre-emption); later it is skipped.
    latest_start: int
    segments: list[Segment] = Field(min_length=1, max_length=MAX_SEGMENTS)
    volume: int | None = Field(default=None, ge=0, le=100)
    title: Title = ""

    @property
    def duration_ms(self) -> int:
        """Length of the whole programme."""
        return sum(seg.duration_ms for seg in self.segments)


#: Plays one window may carry; a window that would hold more ends earlier (it still fits the payload cap).
MAX_WINDOW_PLAYS: Final = 400
#: Standby alarm recordings a window may name (every agent keeps them, ready for an emergency).
MAX_STANDBY: Final = 20


class ScheduleWindow(Strict):
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
