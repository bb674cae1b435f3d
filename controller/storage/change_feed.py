"""A change counter per kind of state, so the console's live pages know when to look again.

A kind is bumped when something of it changed (an agent reported, a motion event arrived, a live session
started): :meth:`ChangeFeed.follow` subscribes the feed to the domain events that say so
(controller/messaging/events.py). Each console event stream (SSE) compares the counters with those it
last sent.
Counters rather than queued events: a slow or idle browser costs nothing, and a burst of a thousand agent
reports is one "fleet changed" for every page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from controller.messaging.events import (
    AgentsReported,
    AnnouncementChanged,
    CameraEventRaised,
    DeviceChanged,
    EventBus,
    LiveChanged,
    ScheduleChanged,
    SignChanged,
)

#: The kinds the console listens for; each is an SSE event name (``sse:fleet`` in htmx).
KINDS: tuple[str, ...] = ("fleet", "plays", "announcements", "motion", "live", "cameras", "signs")
#: What the console's live pages should look at again after a message on each kind of agent topic.
KINDS_BY_TOPIC: dict[str, tuple[str, ...]] = {
    "status": ("fleet",), "info": ("fleet",), "state": ("fleet",), "event": ("fleet", "plays"),
    "reply": ("fleet",),
}


class ChangeFeed:
    """Thread-safe counters, bumped by workers and read by event streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = dict.fromkeys(KINDS, 0)

    def bump(self, *kinds: str) -> None:
        """Records that something of each kind changed; unknown kinds are a programming error."""
        with self._lock:
            for kind in kinds:
                if kind not in self._versions:
                    raise KeyError(f"unknown change kind {kind!r}; known: {', '.join(KINDS)}")
                self._versions[kind] += 1

    def follow(self, bus: EventBus) -> None:
        """Bumps the kinds each domain event touches, from now on."""
        bus.subscribe(AgentsReported, lambda e: self.bump(*sorted({k for t in e.topics
                                                                   for k in KINDS_BY_TOPIC.get(t, ())})))
        bus.subscribe(DeviceChanged, lambda _e: self.bump("fleet"))
        # Schedule items are listed with the announcements (the approval queue, the dashboard).
        bus.subscribe(AnnouncementChanged, lambda _e: self.bump("announcements"))
        bus.subscribe(ScheduleChanged, lambda _e: self.bump("announcements"))
        bus.subscribe(SignChanged, lambda _e: self.bump("signs"))
        bus.subscribe(LiveChanged, lambda _e: self.bump("live"))
        bus.subscribe(CameraEventRaised,
                      lambda e: self.bump("motion" if e.kind == "camera.motion" else "cameras"))

    def versions(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._versions)

    @staticmethod
    def changed(before: Mapping[str, int], after: Mapping[str, int], kinds: Iterable[str] = KINDS) -> list[str]:
        """The kinds whose counter moved between two readings."""
        return [k for k in kinds if after.get(k, 0) != before.get(k, 0)]
