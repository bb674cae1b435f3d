"""A play the speaker has accepted, and what one attempt at it ended with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from devices.audio_output import Playback
from devices.protocol import MediaSegment, PlayOutcome, Priority, RelaySegment


@dataclass(eq=False)
class PlayJob:
    """A play the speaker has accepted: a programme of segments for one start time."""

    play_id: str
    priority: Priority
    start_at: int
    latest_start: int
    segments: list[MediaSegment | RelaySegment]
    volume: int | None = None
    announcement_id: str | None = None
    item_id: str | None = None
    title: str = ""
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    withdrawn: bool = False
    preempted: bool = False
    shutting_down: bool = False
    playback: Playback | None = None
    attempt: int = 0
    #: Where the next attempt starts: the segment a pre-emption cut.
    segment_index: int = 0
    #: Wall-clock end of each relay segment once it first started (a rejoin keeps the same end).
    relay_until: dict[int, int] = field(default_factory=dict)
    #: A live session: its stream lost this long ends the play (None: a relay keeps retrying to its end).
    give_up_ms: int | None = None
    #: The play is restored after a restart (an accepted command, a schedule window's play), so an attempt
    #: cut by the agent's death may be played again.
    resumable: bool = False

    @property
    def rank(self) -> int:
        """Priority rank, higher wins."""
        return self.priority.rank

    @property
    def sha256(self) -> str | None:
        """The first recording of the programme (what proof of play names), None for a pure relay."""
        return next((s.sha256 for s in self.segments if isinstance(s, MediaSegment)), None)

    def media_shas(self) -> set[str]:
        """Every recording the programme needs."""
        return {s.sha256 for s in self.segments if isinstance(s, MediaSegment)}


@dataclass
class Attempt:
    """What one attempt at a play ended with."""

    actual_start: int | None = None
    outcome: PlayOutcome = PlayOutcome.COMPLETED
    reason: str = ""
    cut_at: int = 0
    notes: list[str] = field(default_factory=list)
    final: bool = True


#: Told when a play has ended for good: with its final outcome, or None if it was withdrawn unplayed.
DoneFn = Callable[[PlayJob, PlayOutcome | None], Awaitable[None]]
