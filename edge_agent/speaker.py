"""One loudspeaker's timeline: fetch ahead, start at the absolute start time, pre-empt by priority.

Rules (docs/protocol.md, "Playback rules"; the priority rules themselves are ``schedules.priority``):
- a play starts at ``start_at`` by the agent's own clock — the command or schedule may arrive long
  before, and the controller may be unreachable by then;
- its media is made ready (fetched, decoded) shortly before the start, not when it arrives, so a
  window of 48 hours does not hold 48 hours of decoded audio on the SD card;
- a play is a programme of segments (recordings and relays) played back to back as one play;
- a higher priority pre-empts what is playing; the pre-empted play ends that attempt with outcome
  ``preempted`` and then, by ``schedules.priority.after_preemption``: a recording is played again from
  the segment that was cut once the speaker is free, if it can still start before its
  ``latest_start``; a relay rejoins its stream if its window is still open; otherwise it is skipped;
- a play of the same or lower priority waits until the speaker is free, then starts if it is not past
  its ``latest_start`` (outcome ``expired`` otherwise);
- ``speaker.stop`` ends what plays and drops what waits at or below its priority;
- a play withdrawn because a newer schedule no longer has it is dropped silently (it never was);
- a download that fails for a reason that may pass (controller unreachable, 5xx) is tried again with
  jittered back-off until the play's ``latest_start``; media that comes late makes a late start, media that
  never comes ends the play ``failed`` with the last error;
- with a :class:`~edge_agent.play_journal.PlayJournal`, each sounding attempt is recorded on disk, so an
  attempt cut by the agent's death is reported ``cut`` at the next start and the play goes on as a new attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar

from devices.audio_output import AudioOutput, OutputError, Playback
from devices.protocol import (
    AgentError,
    MediaSegment,
    NowPlaying,
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    Priority,
    RelaySegment,
    now_ms,
)
from edge_agent.amplifier import Amplifier, GpioError
from edge_agent.hooks import EmitFn, FetchFn
from edge_agent.play_job import Attempt, DoneFn, PlayJob
from edge_agent.play_journal import PlayJournal
from edge_agent.play_media import PlayMedia
from edge_agent.store import PlayEnd
from schedules.priority import AfterPreemption, after_preemption, preempts

#: ``PlayJob`` lives in ``edge_agent.play_job``; it is named here too, as what the speaker takes.
__all__ = ["PREPARE_LEAD_MS", "START_AHEAD_MS", "PlayJob", "Speaker", "wait_precisely_until"]

log = logging.getLogger(__name__)


#: Media is fetched and decoded this long before a play's start.
PREPARE_LEAD_MS = 120_000
#: The event loop wakes this long before a start and takes the speaker; the last stretch is timed in the
#: output's own thread, so a busy loop or a thread hand-off does not make speakers start apart.
START_AHEAD_MS = 40
#: The final wait ends in a spin this long: sleeping to the millisecond overshoots by the scheduler's slack.
_SPIN_S = 0.0015


def wait_precisely_until(at_ms: int) -> None:
    """Blocks until the wall clock reaches ``at_ms`` (sleep, then a short spin). Run in a worker thread."""
    target = at_ms / 1000
    remaining = target - time.time()
    if remaining > _SPIN_S:
        time.sleep(remaining - _SPIN_S)
    while time.time() < target:
        pass


_T = TypeVar("_T")


class Speaker:
    """Serialises plays on one output."""

    def __init__(self, output: AudioOutput, volume: int, emit: EmitFn, on_done: DoneFn,
                 on_change: Callable[[], None], executor: Executor, fetch: FetchFn,
                 amp: Amplifier | None = None, journal: PlayJournal | None = None) -> None:
        self.output = output
        #: The amplifier's relay: on and warmed up before sound, off after an idle delay.
        self._amp = amp
        self.volume = volume
        self._emit = emit
        self._on_done = on_done
        self._on_change = on_change
        self._executor = executor
        #: Each play's recordings, fetched and decoded ahead of its start.
        self._media = PlayMedia(output, fetch, emit, self._in_thread)
        #: Records sounding attempts on disk (None: a crash mid-play leaves no trace, as in unit tests).
        self._journal = journal
        self._cond = asyncio.Condition()
        self._current: PlayJob | None = None
        self._waiting: list[PlayJob] = []
        self._jobs: dict[str, tuple[PlayJob, asyncio.Task[None]]] = {}

    # public -----------------------------------------------------------------------------------------

    def submit(self, job: PlayJob) -> bool:
        """Accepts a play; False if one with that id is already known."""
        if job.play_id in self._jobs:
            return False
        point = self._journal.resume_point(job.play_id) if self._journal is not None else None
        if point is not None:
            # Restored after a restart that cut (or followed a pre-emption of) an earlier attempt.
            job.attempt, job.segment_index = point.attempt, point.segment_index
            if point.relay_until is not None:
                job.relay_until[point.segment_index] = point.relay_until
        task = asyncio.create_task(self._run(job), name=f"play-{job.play_id}")
        self._jobs[job.play_id] = (job, task)
        play_id = job.play_id

        def forget(_task: asyncio.Task[None]) -> None:
            self._jobs.pop(play_id, None)

        task.add_done_callback(forget)
        self._on_change()
        return True

    def known(self, play_id: str) -> bool:
        """True while a play with this id is accepted and not ended."""
        return play_id in self._jobs

    def withdraw(self, play_id: str) -> bool:
        """Drops a play that has not started sounding, without any event; False if it is sounding or unknown."""
        entry = self._jobs.get(play_id)
        if entry is None:
            return False
        job = entry[0]
        if job.playback is not None or self._current is job or job.attempt > 0:
            return False
        job.withdrawn = True
        job.cancelled.set()
        return True

    async def stop(self, priority: Priority) -> int:
        """Stops the current play and drops waiting ones at or below ``priority``; returns how many."""
        count = 0
        for job, _task in list(self._jobs.values()):
            if job.rank <= priority.rank:
                job.cancelled.set()
                if job.playback is not None:
                    await self._in_thread(job.playback.stop)
                count += 1
        return count

    async def end(self, play_id: str) -> bool:
        """Stops one play (sounding or waiting); False if it is not known."""
        entry = self._jobs.get(play_id)
        if entry is None:
            return False
        job = entry[0]
        job.cancelled.set()
        if job.playback is not None:
            await self._in_thread(job.playback.stop)
        return True

    def now_playing(self) -> NowPlaying | None:
        """What sounds now, for the state topic."""
        job = self._current
        if job is None or job.playback is None:
            return None
        return NowPlaying(play_id=job.play_id, sha256=job.sha256, priority=job.priority,
                          started_at=job.playback.actual_start_ms, announcement_id=job.announcement_id,
                          item_id=job.item_id, title=job.title)

    def shas_in_use(self) -> set[str]:
        """Media hashes of every accepted play not yet ended (thread-safe snapshot)."""
        shas: set[str] = set()
        for job, _ in list(self._jobs.values()):
            shas |= job.media_shas()
        return shas

    @property
    def pending_count(self) -> int:
        """Plays accepted but not yet sounding."""
        return sum(1 for job, _ in self._jobs.values() if job is not self._current)

    async def shutdown(self) -> None:
        """Silences the speaker; plays not yet started stay in the store for the next start.

        What is sounding ends with outcome ``stopped`` (and is not replayed after a restart); its
        event waits in the outbox like any other.
        """
        sounding = [(job, task) for job, task in self._jobs.values() if job.playback is not None]
        for job, _task in sounding:
            job.shutting_down = True
            await self._in_thread(job.playback.stop)  # type: ignore[union-attr]
        if sounding:
            await asyncio.wait([t for _, t in sounding], timeout=5)
        tasks = [t for _, t in self._jobs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # internals --------------------------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _sleep_until(self, job: PlayJob, at_ms: int) -> bool:
        """Sleeps until ``at_ms`` (not polling); False if the job was cancelled meanwhile."""
        delay = (at_ms - now_ms()) / 1000
        if delay <= 0:
            return not job.cancelled.is_set()
        try:
            await asyncio.wait_for(job.cancelled.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    def _volume(self, job: PlayJob) -> int:
        return job.volume if job.volume is not None else self.volume

    async def _run(self, job: PlayJob) -> None:
        prepared: dict[str, Path] = {}
        final: PlayOutcome | None = None
        try:
            final = await self._play(job, prepared)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in one play must not take the speaker down
            log.exception("play %s failed", job.play_id)
            await self._finish(job, Attempt(None, PlayOutcome.FAILED, f"internal error: {exc}"[:500]))
            final = PlayOutcome.FAILED
        finally:
            await self._media.release(prepared)
        await self._on_done(job, final)
        self._on_change()

    async def _play(self, job: PlayJob, prepared: dict[str, Path]) -> PlayOutcome | None:
        """Runs a play through all its attempts; returns the final outcome (None if withdrawn)."""
        if not await self._sleep_until(job, job.start_at - PREPARE_LEAD_MS):
            return await self._cancelled_before_start(job)
        while True:
            error = await self._media.prepare(job, prepared, self._volume(job),
                                              lambda at: self._sleep_until(job, at))
            if job.cancelled.is_set():
                return await self._cancelled_before_start(job)
            if error is not None:
                await self._finish(job, Attempt(None, PlayOutcome.FAILED, error))
                return PlayOutcome.FAILED
            if job.attempt == 0 and self._amp is not None:
                # Power the amplifier up early enough that its warm-up does not delay the start.
                if not await self._sleep_until(job, job.start_at - START_AHEAD_MS - self._amp.cfg.warm_up_ms):
                    return await self._cancelled_before_start(job)
                try:
                    await self._amp.prewarm()
                except GpioError as exc:
                    log.error("play %s: amplifier: %s", job.play_id, exc)
            if job.attempt == 0 and not await self._sleep_until(job, job.start_at - START_AHEAD_MS):
                return await self._cancelled_before_start(job)
            attempt = await self._attempt(job, prepared)
            if attempt.outcome is not PlayOutcome.PREEMPTED:
                await self._finish(job, attempt)
                return attempt.outcome
            decision = self._after_preemption(job, attempt.cut_at)
            attempt.reason = {
                AfterPreemption.RESTART: "pre-empted by a higher priority; will play again when the speaker is free",
                AfterPreemption.REJOIN: "pre-empted by a higher priority; will rejoin the stream",
                AfterPreemption.SKIP: "pre-empted by a higher priority; too late to play again",
            }[decision]
            attempt.final = decision is AfterPreemption.SKIP
            await self._finish(job, attempt)
            if decision is AfterPreemption.SKIP:
                return PlayOutcome.PREEMPTED
            job.attempt += 1
            job.segment_index = attempt.cut_at
            job.preempted = False
            job.playback = None

    def _after_preemption(self, job: PlayJob, cut_at: int) -> AfterPreemption:
        seg = job.segments[cut_at]
        if isinstance(seg, RelaySegment):
            until = job.relay_until.get(cut_at, job.latest_start)
            return after_preemption("relay", until, now_ms())
        return after_preemption("media", job.latest_start, now_ms())

    async def _cancelled_before_start(self, job: PlayJob) -> PlayOutcome | None:
        if job.withdrawn:
            log.info("play %s withdrawn (no longer in the schedule)", job.play_id)
            return None
        await self._finish(job, Attempt(None, PlayOutcome.STOPPED, "stopped before start"))
        return PlayOutcome.STOPPED

    def _may_start(self, job: PlayJob) -> bool:
        best = max(self._waiting, key=lambda j: (j.rank, -j.start_at))
        if best is not job:
            return False
        return self._current is None or preempts(job.priority, self._current.priority)

    async def _acquire(self, job: PlayJob) -> Attempt | None:
        """Waits for the speaker (pre-empting a lower play); returns why it could not, or None once it is ours."""
        async with self._cond:
            self._waiting.append(job)
            try:
                while not self._may_start(job) and not job.cancelled.is_set():
                    waiter = asyncio.ensure_future(self._cond.wait())
                    cancel = asyncio.ensure_future(job.cancelled.wait())
                    done, pending = await asyncio.wait({waiter, cancel}, return_when=asyncio.FIRST_COMPLETED)
                    for fut in pending:
                        fut.cancel()
                    if waiter not in done:
                        # asyncio.Condition.wait re-acquires the lock even when cancelled.
                        await asyncio.gather(waiter, return_exceptions=True)
            finally:
                self._waiting.remove(job)
                self._cond.notify_all()
            if job.cancelled.is_set():
                return Attempt(None, PlayOutcome.STOPPED, "stopped while waiting")
            if now_ms() >= job.latest_start and not self._relay_window_open(job):
                return Attempt(None, PlayOutcome.EXPIRED, "speaker busy until the play's latest start")
            current = self._current
            if current is not None and current.playback is not None:
                current.preempted = True
                log.info("play %s (%s) pre-empts %s (%s)", job.play_id, job.priority, current.play_id,
                         current.priority)
                await self._in_thread(current.playback.stop)
            self._current = job
            return None

    def _relay_window_open(self, job: PlayJob) -> bool:
        """A rejoining relay may start after ``latest_start`` as long as its own window is open."""
        until = job.relay_until.get(job.segment_index)
        return until is not None and now_ms() < until

    async def _release(self, job: PlayJob) -> None:
        async with self._cond:
            if self._current is job:
                self._current = None
            self._cond.notify_all()
        self._on_change()

    async def _attempt(self, job: PlayJob, prepared: dict[str, Path]) -> Attempt:
        """One run through the programme from ``job.segment_index``, holding the speaker."""
        refused = await self._acquire(job)
        if refused is not None:
            return refused
        result = Attempt()
        volume = self._volume(job)
        amp_held = False
        try:
            if self._amp is not None:
                try:
                    await self._amp.acquire()  # returns once the amplifier has warmed up
                    amp_held = True
                except GpioError as exc:  # sound anyway: a stuck relay must not silence an alarm's log
                    log.error("play %s: amplifier: %s", job.play_id, exc)
            for index in range(job.segment_index, len(job.segments)):
                seg = job.segments[index]
                # Only the first start of a play is due at an instant; later segments follow at once.
                at_ms = job.start_at if job.attempt == 0 and result.actual_start is None else None
                try:
                    playback = await self._start_segment(job, index, seg, prepared, volume, at_ms)
                except OutputError as exc:
                    await self._emit("error", AgentError(code="output_error", message=str(exc)[:1000],
                                                         ref=job.play_id, announcement_id=job.announcement_id))
                    result.outcome, result.reason = PlayOutcome.FAILED, str(exc)[:500]
                    break
                job.playback = playback
                self._on_change()
                if result.actual_start is None:
                    result.actual_start = playback.actual_start_ms
                    started = PlayStarted(
                        play_id=job.play_id, announcement_id=job.announcement_id, item_id=job.item_id,
                        attempt=job.attempt, sha256=job.sha256, priority=job.priority,
                        scheduled_start=job.start_at, actual_start=playback.actual_start_ms,
                        output=self.output.name)
                    if self._journal is not None:
                        # On disk before play.started: a crash from here on is reported as this attempt cut.
                        await self._journal.started(started, segment_index=index, latest_start=job.latest_start,
                                                    relay_until=job.relay_until.get(index), resumable=job.resumable)
                    await self._emit("play.started", started)
                elif self._journal is not None:
                    await self._journal.segment(job.play_id, index, job.relay_until.get(index))
                await self._in_thread(playback.wait)
                if playback.note:
                    result.notes.append(playback.note)
                if job.preempted:
                    result.outcome, result.cut_at = PlayOutcome.PREEMPTED, index
                    break
                if playback.stopped or job.cancelled.is_set():
                    result.outcome = PlayOutcome.STOPPED
                    result.reason = "agent shutting down" if job.shutting_down else "stopped by command"
                    break
                if playback.error:
                    result.outcome, result.reason = PlayOutcome.FAILED, playback.error
                    break
        finally:
            if amp_held and self._amp is not None:
                self._amp.release()
            await self._release(job)
        if result.outcome is PlayOutcome.COMPLETED and result.notes:
            result.reason = "; ".join(result.notes)[:500]
        return result

    async def _start_segment(self, job: PlayJob, index: int, seg: MediaSegment | RelaySegment,
                             prepared: dict[str, Path], volume: int, at_ms: int | None) -> Playback:
        if isinstance(seg, MediaSegment):
            path = prepared[seg.sha256]

            def start() -> Playback:
                if at_ms is not None:
                    wait_precisely_until(at_ms)
                return self.output.start(path, play_id=job.play_id, sha256=seg.sha256, volume=volume)

            return await self._in_thread(start)

        def start_relay() -> Playback:
            if at_ms is not None:
                wait_precisely_until(at_ms)
            until = job.relay_until.setdefault(index, now_ms() + seg.duration_ms)
            return self.output.start_relay(seg.url, play_id=job.play_id, volume=volume, until_ms=until,
                                           give_up_ms=job.give_up_ms)

        return await self._in_thread(start_relay)

    async def _finish(self, job: PlayJob, attempt: Attempt) -> None:
        finished = PlayFinished(
            play_id=job.play_id, announcement_id=job.announcement_id, item_id=job.item_id, attempt=job.attempt,
            sha256=job.sha256, priority=job.priority, scheduled_start=job.start_at,
            actual_start=attempt.actual_start, ended_at=now_ms(), outcome=attempt.outcome,
            reason=attempt.reason, output=self.output.name, final=attempt.final)
        if self._journal is None:
            await self._emit("play.finished", finished)
        elif attempt.final:
            await self._journal.finished(finished, PlayEnd(job.play_id))
        else:
            await self._journal.finished(finished, PlayEnd(job.play_id, job.attempt + 1, attempt.cut_at,
                                                           job.relay_until.get(attempt.cut_at)))
        self._on_change()
