"""Requests to rebuild per-agent retained documents (schedule windows, sign playlists), gathered and served.

Changes arrive in bursts (an officer edits five items, a zone change touches forty agents): requests are gathered
for a moment and built together, off the event loop, and a failed build is asked for again after a pause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sized

log = logging.getLogger(__name__)

#: How long a burst of requests is gathered before one build serves them all.
GATHER_S = 0.2
#: How long a failed build waits before it is tried again.
RETRY_S = 30.0

Build = Callable[[set[str] | None], Sized]


class RebuildRequests:
    """Which agents' documents must be rebuilt (a set, or all), and the task that rebuilds them."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._pending: set[str] = set()
        self._all = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def request(self, agent_ids: Iterable[str] | None) -> None:
        """Asks for these agents' documents (None: every agent) to be rebuilt soon. Safe from any thread."""
        ids = None if agent_ids is None else set(agent_ids)
        if self._loop is None:
            self._note(ids)
        else:
            self._loop.call_soon_threadsafe(self._note, ids)

    def _note(self, ids: set[str] | None) -> None:
        if ids is None:
            self._all = True
        else:
            self._pending |= ids
        self._wake.set()

    def bind(self) -> None:
        """Requests from now on reach the running loop (call from the serving task before it blocks)."""
        self._loop = asyncio.get_running_loop()

    async def serve(self, build: Build, every_s: float | None = None) -> None:
        """Runs ``build`` (blocking, in a thread) for what was asked, forever; every agent each ``every_s`` too."""
        self.bind()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=every_s)
            except TimeoutError:
                self._all = True
            await asyncio.sleep(GATHER_S)
            self._wake.clear()
            every, ids = self._all, self._pending
            self._all, self._pending = False, set()
            try:
                outgoing = await asyncio.to_thread(build, None if every else ids)
            except Exception:
                log.exception("building %s failed; retrying in %g s", self.what, RETRY_S)
                await asyncio.sleep(RETRY_S)
                self._note(None if every else ids)
                continue
            if len(outgoing):
                log.info("new %s for %d agent(s)", self.what, len(outgoing))
