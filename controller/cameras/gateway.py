"""The live-view gateway: one RTSP reader per watched camera, JPEG frames fanned out to every viewer.

Each camera being watched (by a viewer, or by its motion detector) has one :class:`Feed`
(``feed.py``) whose reader thread (``stream.py``) decodes the stream once. The reader starts with the
first viewer and stops a grace period after the last one leaves; the gateway counts viewers over all
feeds and refuses one more than ``max_viewers``.

Stream addresses carry credentials: they are passed to OpenCV and never logged or shown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from controller.cameras.feed import (
    MJPEG_BOUNDARY,
    Feed,
    FeedStatus,
    Frame,
    HealthCallback,
    MotionCallback,
    mjpeg_part,
)
from controller.cameras.stream import FFMPEG_CAPTURE_OPTIONS, GatewayConfig, StreamSpec, probe_stream

__all__ = [
    "FFMPEG_CAPTURE_OPTIONS",
    "MJPEG_BOUNDARY",
    "CameraGateway",
    "Feed",
    "FeedStatus",
    "Frame",
    "GatewayConfig",
    "GatewayFull",
    "HealthCallback",
    "MotionCallback",
    "StreamSpec",
    "mjpeg_part",
    "probe_stream",
]

log = logging.getLogger(__name__)


class GatewayFull(Exception):
    """As many viewers as the gateway serves are watching already."""


class CameraGateway:
    """Feeds by camera id; viewers and motion detection share one reader per camera."""

    def __init__(self, resolve: Callable[[str], Awaitable[StreamSpec]], config: GatewayConfig,
                 on_health: HealthCallback, on_motion: MotionCallback) -> None:
        self._resolve = resolve
        self.config = config
        self._on_health = on_health
        self._on_motion = on_motion
        self._feeds: dict[str, Feed] = {}
        #: Viewer places promised to requests whose stream has not begun (token → monotonic deadline).
        self._reserved: dict[object, float] = {}

    def _feed(self, camera_id: str) -> Feed:
        feed = self._feeds.get(camera_id)
        if feed is None or feed.closed:
            feed = Feed(camera_id, asyncio.get_running_loop(), self.config, self._on_health, self._on_motion)
            self._feeds[camera_id] = feed
        return feed

    def _drop_if_idle(self, camera_id: str) -> None:
        feed = self._feeds.get(camera_id)
        if feed is not None and not feed.wanted and not feed.running:
            del self._feeds[camera_id]

    @property
    def viewers(self) -> int:
        """Viewers at once over all feeds, counting places promised to streams about to begin."""
        now = time.monotonic()
        for token in [t for t, deadline in self._reserved.items() if deadline < now]:
            del self._reserved[token]  # a response that never started streaming gives its place back
        return sum(f.viewers for f in self._feeds.values()) + len(self._reserved)

    def has_room(self) -> bool:
        """True while one more viewer is within ``max_viewers``."""
        return self.viewers < self.config.max_viewers

    def reserve(self, hold_seconds: float = 10.0) -> object:
        """Promises a viewer place now, for a stream that starts later (:meth:`viewer` with the token).

        The API answers "too many live views" before it sends a 200; checking :meth:`has_room` then and
        counting the viewer only when the stream began let two viewers arriving together both pass, the
        second getting a 200 with no frames. GatewayFull when there is no room.
        """
        if not self.has_room():
            raise GatewayFull(f"{self.config.max_viewers} live views are open already")
        token = object()
        self._reserved[token] = time.monotonic() + hold_seconds
        return token

    @asynccontextmanager
    async def viewer(self, camera_id: str, reservation: object | None = None) -> AsyncIterator[Feed]:
        """A viewer of one camera for the duration of the block (starts the reader if needed); with a
        ``reservation`` from :meth:`reserve` the place promised then is taken."""
        held = reservation is not None and self._reserved.pop(reservation, None) is not None
        spec = await self._resolve(camera_id)  # raises for an unknown camera before anything starts
        if not held and not self.has_room():
            raise GatewayFull(f"{self.config.max_viewers} live views are open already")
        feed = self._feed(camera_id)
        feed.viewers += 1
        try:
            feed.start(spec)
            yield feed
        finally:
            feed.viewers -= 1
            if not feed.wanted and not feed.closed:
                feed.stop_later(lambda: self._drop_if_idle(camera_id))

    async def pin(self, camera_id: str, spec: StreamSpec) -> None:
        """Keeps a reader running without viewers (motion detection), restarted with ``spec``."""
        feed = self._feed(camera_id)
        feed.pinned = True
        await self._join(feed.stop_reader())
        feed.start(spec)

    async def unpin(self, camera_id: str) -> None:
        """Lets a pinned reader go (it stops after the grace period if nobody watches)."""
        feed = self._feeds.get(camera_id)
        if feed is None:
            return
        feed.pinned = False
        if feed.viewers == 0:
            await self._join(feed.stop_reader())
            self._drop_if_idle(camera_id)

    async def restart(self, camera_id: str) -> None:
        """Reopens a running reader with the camera's current settings (address, password, motion)."""
        feed = self._feeds.get(camera_id)
        if feed is None or not feed.running:
            return
        spec = await self._resolve(camera_id)
        await self._join(feed.stop_reader())
        feed.start(spec)

    async def forget(self, camera_id: str) -> None:
        """The camera is gone: its viewers end and its reader stops."""
        feed = self._feeds.pop(camera_id, None)
        if feed is not None:
            await self._join(feed.close())

    def latest(self, camera_id: str, max_age_s: float = 5.0) -> Frame | None:
        """The newest frame of a running reader, if it is recent."""
        feed = self._feeds.get(camera_id)
        frame = feed.latest if feed is not None and feed.running else None
        if frame is None or time.time() - frame.captured_at > max_age_s:
            return None
        return frame

    def status(self, camera_id: str) -> FeedStatus | None:
        """The reader's status, or None when no reader runs for this camera."""
        feed = self._feeds.get(camera_id)
        return feed.status() if feed is not None else None

    def feeds(self) -> dict[str, FeedStatus]:
        """Status of every feed."""
        return {cid: feed.status() for cid, feed in self._feeds.items()}

    async def close(self) -> None:
        """Stops every reader and waits for the threads (bounded by the read timeout)."""
        threads = [t for f in self._feeds.values() if (t := f.close()) is not None]
        self._feeds.clear()
        for thread in threads:
            await self._join(thread)

    async def _join(self, thread: threading.Thread | None) -> None:
        if thread is not None:
            timeout = self.config.open_timeout_s + self.config.read_timeout_s + 1
            await asyncio.to_thread(thread.join, timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout)
