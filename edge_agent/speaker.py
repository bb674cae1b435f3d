"""One loudspeaker's timeline: fetch ahead, start at the absolute start time, pre-empt by priority.

Rules (docs/protocol.md, "Playback rules"):
- a play starts at ``start_at`` by the agent's own clock — the command may arrive long before;
- a higher priority pre-empts what is playing; the pre-empted play ends with outcome ``preempted``
  and is not resumed;
- a play of the same or lower priority waits until the speaker is free, then starts if its command
  has not expired (outcome ``expired`` otherwise);
- ``speaker.stop`` ends what plays and drops what waits at or below its priority.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from devices.audio_output import AudioOutput, OutputError, Playback
from devices.protocol import (
    AgentError,
    NowPlaying,
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    Priority,
    SpeakerPlay,
    now_ms,
)
from edge_agent.media_cache import MediaError

log = logging.getLogger(__name__)

EmitFn = Callable[[str, BaseModel], Awaitable[None]]


_T = TypeVar("_T")


@dataclass(eq=False)
class PlayJob:
    """A play the speaker has accepted."""

    play_id: str
    order: SpeakerPlay
    exp: int
    fetch: Callable[[], Path]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    preempted: bool = False
    shutting_down: bool = False
    playback: Playback | None = None

    @property
    def rank(self) -> int:
        """Priority rank, higher wins."""
        return self.order.priority.rank


class Speaker:
    """Serialises plays on one output."""

    def __init__(self, output: AudioOutput, volume: int, emit: EmitFn, on_done: Callable[[str], Awaitable[None]],
                 on_change: Callable[[], None], executor: Executor) -> None:
        self.output = output
        self.volume = volume
        self._emit = emit
        self._on_done = on_done
        self._on_change = on_change
        self._executor = executor
        self._cond = asyncio.Condition()
        self._current: PlayJob | None = None
        self._waiting: list[PlayJob] = []
        self._jobs: dict[str, tuple[PlayJob, asyncio.Task[None]]] = {}
        #: Plays holding each prepared file; it is released when the last one ends.
        self._prepared: Counter[Path] = Counter()

    # public -----------------------------------------------------------------------------------------

    def submit(self, job: PlayJob) -> bool:
        """Accepts a play; False if one with that id is already known."""
        if job.play_id in self._jobs:
            return False
        task = asyncio.create_task(self._run(job), name=f"play-{job.play_id}")
        self._jobs[job.play_id] = (job, task)
        play_id = job.play_id

        def forget(_task: asyncio.Task[None]) -> None:
            self._jobs.pop(play_id, None)

        task.add_done_callback(forget)
        self._on_change()
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

    def now_playing(self) -> NowPlaying | None:
        """What sounds now, for the state topic."""
        job = self._current
        if job is None or job.playback is None:
            return None
        return NowPlaying(play_id=job.play_id, sha256=job.order.sha256, priority=job.order.priority,
                          started_at=job.playback.actual_start_ms, announcement_id=job.order.announcement_id)

    def shas_in_use(self) -> set[str]:
        """Media hashes of every accepted play not yet ended (thread-safe snapshot)."""
        return {job.order.sha256 for job, _ in list(self._jobs.values())}

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

    async def _run(self, job: PlayJob) -> None:
        prepared: Path | None = None
        try:
            prepared = await self._play(job)
        finally:
            if prepared is not None:
                self._prepared[prepared] -= 1
                if self._prepared[prepared] <= 0:
                    del self._prepared[prepared]
                    await asyncio.shield(self._in_thread(lambda: self.output.release(prepared)))

    async def _play(self, job: PlayJob) -> Path | None:
        """Runs one play to its end; returns what was prepared for it (to be released)."""
        order = job.order
        volume = order.volume if order.volume is not None else self.volume
        prepared: Path | None = None
        try:
            try:
                media = await self._in_thread(job.fetch)
                prepared = await self._in_thread(lambda: self.output.prepare(media, volume))
                self._prepared[prepared] += 1
            except (MediaError, OutputError) as exc:
                code = exc.code if isinstance(exc, MediaError) else "output_error"
                log.error("play %s: cannot get media ready: %s: %s", job.play_id, code, exc)
                await self._emit("error", AgentError(code=code, message=str(exc)[:1000], ref=job.play_id,
                                                     announcement_id=order.announcement_id))
                await self._finish(job, None, PlayOutcome.FAILED, f"{code}: {exc}"[:500])
                return prepared
            if not await self._sleep_until(job, order.start_at):
                await self._finish(job, None, PlayOutcome.STOPPED, "stopped before start")
                return prepared
            playback = await self._acquire_and_start(job, prepared, volume)
            if playback is None:
                return prepared
            await self._emit("play.started", PlayStarted(
                play_id=job.play_id, announcement_id=order.announcement_id, sha256=order.sha256,
                priority=order.priority, scheduled_start=order.start_at, actual_start=playback.actual_start_ms,
                output=self.output.name))
            await self._in_thread(playback.wait)
            async with self._cond:
                if self._current is job:
                    self._current = None
                self._cond.notify_all()
            self._on_change()
            if job.preempted:
                outcome, reason = PlayOutcome.PREEMPTED, "pre-empted by a higher priority"
            elif playback.stopped:
                outcome, reason = PlayOutcome.STOPPED, ("agent shutting down" if job.shutting_down
                                                        else "stopped by command")
            elif playback.error:
                outcome, reason = PlayOutcome.FAILED, playback.error
            else:
                outcome, reason = PlayOutcome.COMPLETED, ""
            await self._finish(job, playback.actual_start_ms, outcome, reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in one play must not take the speaker down
            log.exception("play %s failed", job.play_id)
            await self._finish(job, None, PlayOutcome.FAILED, f"internal error: {exc}"[:500])
        return prepared

    def _may_start(self, job: PlayJob) -> bool:
        best = max(self._waiting, key=lambda j: (j.rank, -j.order.start_at))
        if best is not job:
            return False
        return self._current is None or job.rank > self._current.rank

    async def _acquire_and_start(self, job: PlayJob, prepared: Path, volume: int) -> Playback | None:
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
                outcome, reason = PlayOutcome.STOPPED, "stopped while waiting"
            elif now_ms() >= job.exp:
                outcome, reason = PlayOutcome.EXPIRED, "speaker busy until the command expired"
            else:
                current = self._current
                if current is not None and current.playback is not None:
                    current.preempted = True
                    log.info("play %s (%s) pre-empts %s (%s)", job.play_id, job.order.priority,
                             current.play_id, current.order.priority)
                    await self._in_thread(current.playback.stop)
                try:
                    playback = await self._in_thread(lambda: self.output.start(
                        prepared, play_id=job.play_id, sha256=job.order.sha256, volume=volume))
                except OutputError as exc:
                    await self._emit("error", AgentError(code="output_error", message=str(exc)[:1000],
                                                         ref=job.play_id,
                                                         announcement_id=job.order.announcement_id))
                    outcome, reason = PlayOutcome.FAILED, str(exc)[:500]
                else:
                    job.playback = playback
                    self._current = job
                    self._on_change()
                    return playback
        await self._finish(job, None, outcome, reason)
        return None

    async def _finish(self, job: PlayJob, actual_start: int | None, outcome: PlayOutcome, reason: str) -> None:
        order = job.order
        await self._emit("play.finished", PlayFinished(
            play_id=job.play_id, announcement_id=order.announcement_id, sha256=order.sha256,
            priority=order.priority, scheduled_start=order.start_at, actual_start=actual_start,
            ended_at=now_ms(), outcome=outcome, reason=reason, output=self.output.name))
        await self._on_done(job.play_id)
        self._on_change()
