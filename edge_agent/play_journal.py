"""Which attempt of which play is sounding, kept on disk, so a play cut by a crash stays in proof of play.

Before a play's ``play.started`` is queued, the journal records that attempt N of it sounds (with the
event itself and where in the programme it is), and while it sounds it records the time every
:data:`HEARTBEAT_MS`. Each attempt's ``play.finished`` updates the record in the same transaction as the
event (:class:`~edge_agent.store.PlayEnd`).

At start-up, a record still marked sounding means the agent died mid-play (``kill -9``, a crash, a power
cut). The journal then queues ``play.finished`` for attempt N with outcome ``cut``: ``actual_start`` as
recorded, ``ended_at`` the last time the play was seen sounding, so ``ended_at - actual_start`` is how far
it got (at most one heartbeat short; the moment of death itself is unknowable after ``kill -9``). The cut
is treated like a pre-emption (``schedules.priority.after_preemption``): a recording is played again from
the segment that was cut, as attempt N+1, if it can still start before its ``latest_start``; a relay
rejoins its stream while its window is open; otherwise the cut attempt is final. Plays that are not kept
across a restart (live sessions, test tones) are never replayed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from pydantic import BaseModel, ValidationError

from devices.protocol import PlayFinished, PlayOutcome, PlayStarted, now_ms
from edge_agent.hooks import InThread
from edge_agent.store import AgentStore, AttemptRow, PlayEnd
from schedules.priority import AfterPreemption, after_preemption

log = logging.getLogger(__name__)

#: A sounding play's progress is written this often: the most a cut play's reported length can fall short.
HEARTBEAT_MS = 1000

#: Queues an event on disk, with what it does to the play's records in the same transaction.
EmitEndFn = Callable[[str, BaseModel, PlayEnd | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a play restored after a restart goes on: which attempt, from which segment."""

    attempt: int
    segment_index: int
    relay_until: int | None


class PlayJournal:
    """Records sounding attempts for the speaker and reports the ones a crash cut."""

    def __init__(self, store: AgentStore, in_thread: InThread, emit: EmitEndFn) -> None:
        self._store = store
        self._in_thread = in_thread
        self._emit = emit
        #: Plays sounding now (their progress is written by :meth:`heartbeat`).
        self._sounding: set[str] = set()
        #: Plays to go on after a restart, with their last ``play.started``; taken by :meth:`resume_point`.
        self._resume: dict[str, tuple[ResumePoint, PlayStarted]] = {}

    # while playing ----------------------------------------------------------------------------------

    async def started(self, started: PlayStarted, *, segment_index: int, latest_start: int,
                      relay_until: int | None, resumable: bool) -> None:
        """Attempt ``started.attempt`` sounds from ``segment_index``; call before queuing ``play.started``."""
        row = AttemptRow(play_id=started.play_id, attempt=started.attempt, segment_index=segment_index,
                         latest_start=latest_start, relay_until=relay_until, resumable=resumable,
                         started=started.model_dump_json().encode(), sounding=True,
                         progress_at=started.actual_start)
        self._sounding.add(started.play_id)
        try:
            await self._in_thread(partial(self._store.begin_attempt, row))
        except sqlite3.Error as exc:  # the sound matters more than its record: play on
            log.error("play %s: cannot record its attempt %d on disk: %s", started.play_id, started.attempt, exc)

    async def segment(self, play_id: str, segment_index: int, relay_until: int | None) -> None:
        """The sounding attempt reached another segment of its programme."""
        await self._in_thread(partial(self._store.attempt_segment, play_id, segment_index, relay_until))

    async def finished(self, finished: PlayFinished, end: PlayEnd) -> None:
        """Queues an attempt's ``play.finished`` together with what it means for the play's records."""
        self._sounding.discard(end.play_id)
        await self._emit("play.finished", finished, end)

    async def heartbeat(self) -> None:
        """Writes the sounding plays' progress every :data:`HEARTBEAT_MS` (runs until cancelled)."""
        while True:
            await asyncio.sleep(HEARTBEAT_MS / 1000)
            if self._sounding:
                ids, at = sorted(self._sounding), now_ms()
                try:
                    await self._in_thread(partial(self._store.touch_attempts, ids, at))
                except sqlite3.Error as exc:  # a full disk must not end the agent's heartbeat task
                    log.warning("cannot record the progress of %d play(s): %s", len(ids), exc)

    # after a restart --------------------------------------------------------------------------------

    def awaits(self, play_id: str) -> bool:
        """True if the play sounded before the restart and is to go on (or be closed by :meth:`close_unrestored`)."""
        return play_id in self._resume

    def resume_point(self, play_id: str) -> ResumePoint | None:
        """Where a restored play goes on (None: it starts afresh as attempt 0)."""
        entry = self._resume.pop(play_id, None)
        return None if entry is None else entry[0]

    async def recover(self) -> int:
        """Reports every attempt a crash cut and remembers which plays go on; returns how many were cut.

        Call once at start-up, before accepted plays and the schedule window are restored.
        """
        now = now_ms()
        cut = 0
        for row in await self._in_thread(self._store.attempts):
            try:
                started = PlayStarted.model_validate_json(row.started)
            except ValidationError as exc:
                log.error("play %s: its attempt record is unreadable, dropping it: %s", row.play_id, exc)
                await self._in_thread(partial(self._store.drop_attempt, row.play_id))
                continue
            if not row.sounding:
                # Pre-empted before the restart and waiting to play again.
                self._resume[row.play_id] = (ResumePoint(row.attempt, row.segment_index, row.relay_until), started)
                continue
            cut += 1
            await self._report_cut(row, started, now)
        return cut

    async def _report_cut(self, row: AttemptRow, started: PlayStarted, now: int) -> None:
        played_ms = max(0, row.progress_at - started.actual_start)
        kind: Literal["media", "relay"] = "relay" if row.relay_until is not None else "media"
        until = row.relay_until if row.relay_until is not None else row.latest_start
        again = row.resumable and after_preemption(kind, until, now) is not AfterPreemption.SKIP
        if again:
            then = "will rejoin the stream" if kind == "relay" else "will play again"
        elif row.resumable:
            then = "too late to play again"
        else:
            then = "not kept across a restart"
        reason = (f"cut: the agent stopped mid-play (crash or power loss) after at least {played_ms / 1000:.1f} s; "
                  f"{then}")
        log.warning("play %s attempt %d was cut %d ms in by the agent's end; %s", row.play_id, row.attempt,
                    played_ms, then)
        finished = PlayFinished(
            play_id=started.play_id, announcement_id=started.announcement_id, item_id=started.item_id,
            attempt=row.attempt, sha256=started.sha256, priority=started.priority,
            scheduled_start=started.scheduled_start, actual_start=started.actual_start, ended_at=row.progress_at,
            outcome=PlayOutcome.CUT, reason=reason, output=started.output, final=not again)
        end = PlayEnd(row.play_id, row.attempt + 1 if again else None, row.segment_index, row.relay_until)
        await self._emit("play.finished", finished, end)
        if again:
            self._resume[row.play_id] = (ResumePoint(row.attempt + 1, row.segment_index, row.relay_until), started)

    async def close_unrestored(self) -> int:
        """Ends, as ``expired``, plays that were to go on but that nothing restored; returns how many.

        Call after accepted plays and the schedule window are restored: a play left here lost its command
        (expired in the meantime) or its window, and would otherwise never report its last attempt.
        """
        closed = 0
        for play_id, (point, started) in list(self._resume.items()):
            del self._resume[play_id]
            finished = PlayFinished(
                play_id=play_id, announcement_id=started.announcement_id, item_id=started.item_id,
                attempt=point.attempt, sha256=started.sha256, priority=started.priority,
                scheduled_start=started.scheduled_start, actual_start=None, ended_at=now_ms(),
                outcome=PlayOutcome.EXPIRED, reason="could not be played again before its latest start",
                output=started.output, final=True)
            await self._emit("play.finished", finished, PlayEnd(play_id))
            closed += 1
        return closed
