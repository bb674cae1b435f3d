"""One camera's feed: the newest frame, the viewers waiting for it, and the reader making the frames.

Viewers never queue frames: each asks for "a frame newer than the one I sent" and gets the newest there
is, so a slow viewer skips frames instead of building a backlog. Each frame is wrapped once as a
``multipart/x-mixed-replace`` part and that same bytes object goes to every viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.cameras.motion import MotionHit
from controller.cameras.stream import GatewayConfig, StreamReader, StreamSpec

log = logging.getLogger(__name__)

#: Boundary between the parts of a ``multipart/x-mixed-replace`` live view.
MJPEG_BOUNDARY = "frame"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame as JPEG; ``seq`` grows by one per frame of a feed."""

    seq: int
    jpeg: bytes
    width: int
    height: int
    #: Unix time the frame was decoded.
    captured_at: float
    #: The frame as one part of an MJPEG stream, built once and sent as-is to every viewer.
    part: bytes


def mjpeg_part(seq: int, jpeg: bytes, captured_at: float) -> bytes:
    """One ``multipart/x-mixed-replace`` part: boundary, headers (sequence, capture time), the JPEG."""
    head = (f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
            f"X-Frame-Seq: {seq}\r\nX-Frame-Time: {captured_at:.6f}\r\n\r\n")
    return b"".join((head.encode(), jpeg, b"\r\n"))


@dataclass(frozen=True)
class FeedStatus:
    """What the status endpoint shows about a camera's reader."""

    running: bool
    online: bool
    fps: float
    width: int | None
    height: int | None
    last_frame_age_s: float | None
    viewers: int
    motion: bool
    reconnects: int
    error: str | None


HealthCallback = Callable[[str, bool, str | None], None]
MotionCallback = Callable[[str, MotionHit], None]


@dataclass
class _Shared:
    """State written by the reader thread and read by the loop, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    online: bool = False
    width: int | None = None
    height: int | None = None
    last_frame_mono: float | None = None
    times: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    reconnects: int = 0
    error: str | None = None


class Feed:
    """One camera's frames: the newest one, the viewers waiting for it, and the reader making them."""

    def __init__(self, camera_id: str, loop: asyncio.AbstractEventLoop, config: GatewayConfig,
                 on_health: HealthCallback, on_motion: MotionCallback) -> None:
        self.camera_id = camera_id
        self.viewers = 0
        self.pinned = False
        self.closed = False
        self._loop = loop
        self._config = config
        self._on_health = on_health
        self._on_motion = on_motion
        self._latest: Frame | None = None
        self._seq = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._reader: StreamReader | None = None
        self._spec: StreamSpec | None = None
        self._stop_timer: asyncio.TimerHandle | None = None
        self._shared = _Shared()

    # called from the reader thread -------------------------------------------------------------------

    def frame_from_thread(self, jpeg: bytes, width: int, height: int) -> None:
        """A new frame (reader thread): recorded for status, handed to the loop for the viewers."""
        now = time.monotonic()
        with self._shared.lock:
            s = self._shared
            if not s.online:
                s.online, s.error = True, None
            s.width, s.height, s.last_frame_mono = width, height, now
            s.times.append(now)
        self._call(self._publish, jpeg, width, height, time.time())

    def motion_from_thread(self, hit: MotionHit, jpeg: bytes) -> None:
        """The detector fired (reader thread)."""
        self._call(self._on_motion, self.camera_id, hit.with_snapshot(jpeg))

    def set_offline(self, error: str) -> None:
        """The stream is down (reader thread)."""
        with self._shared.lock:
            self._shared.online = False
            self._shared.error = error
            self._shared.reconnects += 1

    def report_health(self, ok: bool, reason: str | None) -> None:
        """The camera stopped answering for long, or came back (reader thread)."""
        self._call(self._on_health, self.camera_id, ok, reason)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing; the reader is being stopped too
            self._loop.call_soon_threadsafe(fn, *args)

    # on the loop ------------------------------------------------------------------------------------

    def _publish(self, jpeg: bytes, width: int, height: int, captured_at: float) -> None:
        self._seq += 1
        self._latest = Frame(self._seq, jpeg, width, height, captured_at, mjpeg_part(self._seq, jpeg, captured_at))
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    @property
    def latest(self) -> Frame | None:
        """The newest frame, if any has arrived since the reader started."""
        return self._latest

    async def next_frame(self, after_seq: int, wait_s: float | None) -> Frame | None:
        """The newest frame after ``after_seq``; None after ``wait_s`` (None: no limit) or when the feed closes."""
        if self._latest is not None and self._latest.seq > after_seq:
            return self._latest
        # One future per viewer (cancelling a viewer must not cancel the others), no timer unless asked:
        # this runs once per frame per viewer, so it is kept to the least work that wakes it.
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.add(fut)
        try:
            if wait_s is None:
                await fut
            else:
                async with asyncio.timeout(wait_s):
                    await fut
        except TimeoutError:
            return None
        finally:
            self._waiters.discard(fut)
        if self.closed or self._latest is None or self._latest.seq <= after_seq:
            return None
        return self._latest

    def status(self) -> FeedStatus:
        """Online, fps over the last seconds, resolution, last frame age, viewers."""
        now = time.monotonic()
        with self._shared.lock:
            s = self._shared
            recent = [t for t in s.times if now - t <= 3.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
            age = now - s.last_frame_mono if s.last_frame_mono is not None else None
            return FeedStatus(running=self.running, online=s.online and self.running, fps=round(fps, 2),
                              width=s.width, height=s.height,
                              last_frame_age_s=round(age, 3) if age is not None else None,
                              viewers=self.viewers, motion=bool(self._spec and self._spec.motion
                                                                 and self._spec.motion.enabled),
                              reconnects=s.reconnects, error=s.error)

    @property
    def running(self) -> bool:
        """True while a reader thread is alive."""
        return self._reader is not None and self._reader.is_alive()

    @property
    def wanted(self) -> bool:
        """True while someone needs frames (a viewer or the motion detector)."""
        return self.viewers > 0 or self.pinned

    def start(self, spec: StreamSpec) -> None:
        """Starts the reader (or keeps the running one); cancels a pending stop."""
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        if self.running:
            return
        self._spec = spec
        self._latest = None
        with self._shared.lock:
            self._shared.times.clear()
            self._shared.online = False
        self._reader = StreamReader(self, spec, self._config)
        self._reader.start()
        log.info("camera %s: reader started", self.camera_id)

    def stop_later(self, on_stopped: Callable[[], None]) -> None:
        """Stops the reader after the grace period unless someone comes back."""
        if self._stop_timer is not None:
            self._stop_timer.cancel()

        def fire() -> None:
            self._stop_timer = None
            if not self.wanted:
                self.stop_reader()
                on_stopped()

        self._stop_timer = self._loop.call_later(self._config.grace_s, fire)

    def stop_reader(self) -> threading.Thread | None:
        """Tells the reader to stop; returns its thread so the caller may join it off the loop."""
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        reader, self._reader = self._reader, None
        if reader is None:
            return None
        reader.stop_event.set()
        with self._shared.lock:
            self._shared.online = False
        log.info("camera %s: reader stopped", self.camera_id)
        return reader

    def close(self) -> threading.Thread | None:
        """Ends the feed: its viewers get no more frames, its reader stops."""
        self.closed = True
        self._wake()
        return self.stop_reader()
