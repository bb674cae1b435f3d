"""Getting a play's recordings ready: fetched (patiently) and decoded ahead of its start, freed after it.

A decoded file can serve several plays of the same recording at the same volume; it is released when
the last play holding it ends, so a long window does not keep hours of decoded audio on the SD card.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from devices.audio_output import AudioOutput, OutputError
from devices.protocol import AgentError, MediaSegment
from edge_agent.hooks import EmitFn, FetchFn, InThread
from edge_agent.media_cache import MediaError
from edge_agent.media_retry import fetch_patiently
from edge_agent.play_job import PlayJob

log = logging.getLogger(__name__)


class PlayMedia:
    """Prepares each play's recordings on one output and frees them once no play needs them."""

    def __init__(self, output: AudioOutput, fetch: FetchFn, emit: EmitFn, in_thread: InThread) -> None:
        self._output = output
        self._fetch = fetch
        self._emit = emit
        self._in_thread = in_thread
        #: Plays holding each prepared file; it is released when the last one ends.
        self._holders: Counter[Path] = Counter()

    async def prepare(self, job: PlayJob, prepared: dict[str, Path], volume: int,
                      sleep_until: Callable[[int], Awaitable[bool]]) -> str | None:
        """Fetches and decodes every recording the play still needs into ``prepared``; returns an error, or None.

        ``sleep_until`` waits between download tries and returns False once the play is cancelled; None is
        returned then too (the caller checks ``job.cancelled``).
        """
        for seg in job.segments[job.segment_index:]:
            if not isinstance(seg, MediaSegment) or seg.sha256 in prepared:
                continue
            try:
                media = await fetch_patiently(
                    partial(self._fetch, seg.sha256, seg.size), self._in_thread, sleep_until,
                    start_at=job.start_at, latest_start=job.latest_start,
                    label=f"play {job.play_id}: media {seg.sha256[:12]}")
                if media is None:
                    return None
                path: Path = await self._in_thread(partial(self._output.prepare, media, volume))
            except (MediaError, OutputError) as exc:
                code = exc.code if isinstance(exc, MediaError) else "output_error"
                log.error("play %s: cannot get media ready: %s: %s", job.play_id, code, exc)
                await self._emit("error", AgentError(code=code, message=str(exc)[:1000], ref=job.play_id,
                                                     announcement_id=job.announcement_id))
                return f"{code}: {exc}"[:500]
            prepared[seg.sha256] = path
            self._holders[path] += 1
        return None

    async def release(self, prepared: dict[str, Path]) -> None:
        """A play has ended: frees each of its files no other play holds (even while being cancelled)."""
        for path in prepared.values():
            self._holders[path] -= 1
            if self._holders[path] <= 0:
                del self._holders[path]
                await asyncio.shield(self._in_thread(partial(self._output.release, path)))
