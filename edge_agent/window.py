"""The agent's schedule window: the plays of the latest window it accepted, held by the speaker, media fetched ahead.

The controller keeps a signed ``schedule.window`` retained on the agent's ``…/schedule`` topic. The
agent checks it like any command (``edge_agent.agent``) and hands it here: a newer version replaces the
older one whole, the window is saved so it plays on after a restart while the controller is
unreachable, plays no longer in it are withdrawn, plays whose time passed while the agent was off are
reported ``expired`` once, and every recording it names (standby alarms first) is downloaded ahead so a
dropped link later costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from devices.protocol import (
    MediaSegment,
    PlayFinished,
    PlayOutcome,
    ProtocolError,
    ScheduledPlay,
    ScheduleWindow,
    now_ms,
    parse_envelope,
    parse_model,
)
from edge_agent.hooks import EmitFn, FetchFn, InThread
from edge_agent.media_cache import MediaError
from edge_agent.play_job import PlayJob
from edge_agent.play_journal import PlayJournal
from edge_agent.speaker import Speaker
from edge_agent.store import AgentStore

log = logging.getLogger(__name__)

#: A prefetch round with failures is tried again after this long.
PREFETCH_RETRY_S = 30


class WindowKeeper:
    """Makes the speaker hold exactly the plays of the newest accepted window that have not been played."""

    def __init__(self, store: AgentStore, speaker: Speaker, journal: PlayJournal, *, in_thread: InThread,
                 emit: EmitFn, fetch: FetchFn, output_name: str, on_change: Callable[[], None]) -> None:
        self._store = store
        self._speaker = speaker
        self._journal = journal
        self._in_thread = in_thread
        self._emit = emit
        self._fetch = fetch
        self._output_name = output_name
        #: Called when the window changed (the agent's state names its version).
        self._on_change = on_change
        #: Plays of the current window that the speaker holds, by play id.
        self._scheduled: dict[str, ScheduledPlay] = {}
        #: Standby alarm recordings the window names: kept in the cache, never evicted.
        self._standby: dict[str, MediaSegment] = {}
        self._version: int | None = None
        self._prefetch_wanted = asyncio.Event()

    @property
    def version(self) -> int | None:
        """Version of the window being played (None before the first)."""
        return self._version

    def standby_shas(self) -> set[str]:
        """The standby alarm recordings the cache must keep."""
        return set(self._standby)

    async def take(self, window: ScheduleWindow, envelope: bytes) -> bool:
        """Plays a verified window (``envelope``: its signed bytes, saved); False if it is not newer."""
        if self._version is not None and window.version <= self._version:
            log.info("schedule window v%d ignored: v%d is newer", window.version, self._version)
            return False
        await self._in_thread(partial(self._store.save_schedule, window.version, envelope))
        await self._apply(window)
        return True

    async def restore(self) -> None:
        """Plays from the last window accepted before a restart (its signature was checked on arrival)."""
        stored = await self._in_thread(self._store.schedule)
        if stored is None:
            return
        try:
            window = parse_model(ScheduleWindow, parse_envelope(stored[1]).data)
        except ProtocolError as exc:
            log.error("stored schedule window unreadable, waiting for a new one: %s", exc)
            return
        await self._apply(window)

    async def play_ended(self, play_id: str) -> None:
        """A play of the window ended (played, pre-empted for good, failed…): it is done, never again."""
        if play_id in self._scheduled:
            await self._in_thread(partial(self._store.mark_done, play_id))
            self._scheduled.pop(play_id, None)

    async def _apply(self, window: ScheduleWindow) -> None:
        wanted = {p.play_id: p for p in window.plays}
        withdrawn = 0
        for play_id in list(self._scheduled):
            if play_id not in wanted:
                if self._speaker.withdraw(play_id):
                    withdrawn += 1
                self._scheduled.pop(play_id, None)
        done = await self._in_thread(partial(self._store.done_among, list(wanted)))
        now = now_ms()
        added = missed = 0
        for play_id, play in wanted.items():
            if play_id in done or self._speaker.known(play_id):
                self._scheduled.setdefault(play_id, play)
                continue
            if play.latest_start <= now:
                if self._journal.awaits(play_id):
                    continue  # it sounded before a restart: the journal reports its last attempt
                # Its time passed while this agent was off or unreachable: say so in proof of play, once.
                await self._missed(play)
                missed += 1
                continue
            self._scheduled[play_id] = play
            self._speaker.submit(PlayJob(play_id=play_id, priority=play.priority, start_at=play.start_at,
                                         latest_start=play.latest_start, segments=list(play.segments),
                                         volume=play.volume, item_id=play.item_id, title=play.title,
                                         resumable=True))
            added += 1
        self._version = window.version
        self._standby = {seg.sha256: seg for seg in window.standby}
        log.info("schedule window v%d: %d plays (%d new, %d withdrawn, %d missed) until %d, %d standby alarm(s)",
                 window.version, len(wanted), added, withdrawn, missed, window.window_end, len(self._standby))
        self._prefetch_wanted.set()
        self._on_change()

    async def _missed(self, play: ScheduledPlay) -> None:
        first_media = next((s.sha256 for s in play.segments if isinstance(s, MediaSegment)), None)
        await self._emit("play.finished", PlayFinished(
            play_id=play.play_id, item_id=play.item_id, sha256=first_media, priority=play.priority,
            scheduled_start=play.start_at, actual_start=None, ended_at=now_ms(), outcome=PlayOutcome.EXPIRED,
            reason="missed: the agent was not running at its start time", output=self._output_name))
        await self._in_thread(partial(self._store.mark_done, play.play_id))

    async def prefetch(self) -> None:
        """Downloads every recording the window needs, soonest first, whenever the window changes (runs forever)."""
        while True:
            await self._prefetch_wanted.wait()
            self._prefetch_wanted.clear()
            # Standby alarms first: an emergency can come at any moment, the next bulletin has its time.
            todo: list[MediaSegment] = list(self._standby.values())
            seen: set[str] = set(self._standby)
            for play in sorted(self._scheduled.values(), key=lambda p: p.start_at):
                for seg in play.segments:
                    if isinstance(seg, MediaSegment) and seg.sha256 not in seen:
                        seen.add(seg.sha256)
                        todo.append(seg)
            failed = 0
            for seg in todo:
                try:
                    await self._in_thread(partial(self._fetch, seg.sha256, seg.size))
                except MediaError as exc:
                    failed += 1
                    log.warning("prefetch of %s failed (%s); retrying later", seg.sha256[:12], exc)
            if failed:
                await asyncio.sleep(PREFETCH_RETRY_S)
                self._prefetch_wanted.set()
