"""Getting a play's media when the controller is away: try again with jittered back-off until the play's
latest start, at whichever controller replica answers (:class:`~edge_agent.media_cache.MediaCache` moves
between them within one try)."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from devices.protocol import now_ms
from edge_agent.media_cache import MediaError

log = logging.getLogger(__name__)

#: Back-off between download tries: from FIRST_S doubling to CAP_S. The cap is short because a play
#: waiting on its media is late by up to one wait after the controller is back; a refused connection
#: costs a controller nothing, and the jitter spreads a fleet's tries.
FIRST_S = 0.25
CAP_S = 2.0


class Backoff:
    """Waits between tries: doubling from ``first_s`` up to ``cap_s``, each drawn between half and all of
    that (jitter), so a fleet that lost its controller at once does not come back in lockstep."""

    def __init__(self, first_s: float = FIRST_S, cap_s: float = CAP_S) -> None:
        self._cap = cap_s
        self._next = first_s

    def next_delay(self) -> float:
        """Seconds to wait before the next try."""
        delay = self._next
        self._next = min(self._cap, self._next * 2)
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 — jitter, not a secret


async def fetch_patiently(fetch: Callable[[], Path], in_thread: Callable[[Callable[[], Path]], Awaitable[Path]],
                          sleep_until: Callable[[int], Awaitable[bool]], *, start_at: int, latest_start: int,
                          label: str) -> Path | None:
    """Runs blocking ``fetch`` in a thread until it succeeds; None if ``sleep_until`` says the play was
    cancelled while waiting.

    A ``MediaError`` that may pass (``retryable``) is tried again until ``latest_start``; then, or for one
    that will not pass, the error is raised (after tries, its message says so).
    """
    backoff = Backoff()
    tries = 0
    while True:
        try:
            path = await in_thread(fetch)
        except MediaError as exc:
            tries += 1
            now = now_ms()
            if not exc.retryable:
                raise
            if now >= latest_start:
                raise MediaError(exc.code, f"{exc} (gave up after {tries} tries: the play's latest start "
                                           f"passed {now - latest_start} ms ago)") from None
            delay_ms = min(int(backoff.next_delay() * 1000), latest_start - now)
            late = now - start_at
            log.log(logging.WARNING if tries == 1 or tries % 10 == 0 else logging.INFO,
                    "%s not downloaded (try %d%s): %s; trying again in %d ms", label, tries,
                    f", {late} ms past its start" if late > 0 else "", exc, delay_ms)
            if not await sleep_until(now + delay_ms):
                return None
            continue
        if tries:
            log.info("%s downloaded after %d failed tries", label, tries)
        return path
