"""The live-view gateway: one RTSP reader per watched camera, JPEG frames fanned out to every viewer.

Each camera being watched (by a viewer, or by its motion detector) has one :class:`Feed`. Its reader
thread opens the stream with OpenCV's FFmpeg backend, decodes each frame once, encodes it to JPEG
once, runs motion detection on it, and hands it to the event loop. Viewers never queue frames: each
asks for "a frame newer than the one I sent" and gets the newest there is, so a slow viewer skips
frames instead of building a backlog. The reader starts with the first viewer and stops a grace
period after the last one leaves; when the stream drops it reconnects with back-off.

Stream addresses carry credentials: they are passed to OpenCV and never logged or shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from controller.cameras.motion import MotionDetector, MotionHit, MotionSettings

log = logging.getLogger(__name__)

#: FFmpeg options for every capture: TCP (no lost UDP packets on busy links), small probe, no buffering.
FFMPEG_CAPTURE_OPTIONS = "rtsp_transport;tcp|analyzeduration;200000|probesize;32768|fflags;nobuffer"
# OpenCV reads this from the environment each time a capture opens. Set once here, at import (on the
# main thread), rather than from the reader threads: the environment is not safe to change concurrently.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_CAPTURE_OPTIONS)


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
class StreamSpec:
    """How to open one camera's stream; ``url`` holds the credentials and is never logged."""

    url: str
    motion: MotionSettings | None = None


@dataclass(frozen=True)
class GatewayConfig:
    """Tuning of the gateway (from the controller settings)."""

    grace_s: float = 10.0
    jpeg_quality: int = 80
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 10.0
    #: A watched camera without a frame for this long is reported as faulty.
    fault_after_s: float = 15.0
    #: Viewers at once over all feeds.
    max_viewers: int = 200


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


class GatewayFull(Exception):
    """As many viewers as the gateway serves are watching already."""


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


class _Reader(threading.Thread):
    """Reads one stream until told to stop; reconnects with back-off."""

    def __init__(self, feed: Feed, spec: StreamSpec, config: GatewayConfig) -> None:
        super().__init__(name=f"camera-reader-{feed.camera_id}", daemon=True)
        self.feed = feed
        self.spec = spec
        self.config = config
        self.stop_event = threading.Event()
        self.detector = MotionDetector(spec.motion) if spec.motion and spec.motion.enabled else None

    def run(self) -> None:
        import cv2

        cfg = self.config
        backoff = cfg.backoff_min_s
        down_since = time.monotonic()
        faulted = False
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000)]
        encode = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
        while not self.stop_event.is_set():
            cap: Any = None
            got_frame = False
            try:
                cap = cv2.VideoCapture(self.spec.url, cv2.CAP_FFMPEG, params)
                while cap.isOpened() and not self.stop_event.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    ok, jpeg = cv2.imencode(".jpg", image, encode)
                    if not ok:
                        continue
                    if not got_frame:
                        got_frame, faulted = True, False
                        backoff = cfg.backoff_min_s
                        self.feed.report_health(True, None)
                    self.feed.frame_from_thread(jpeg.tobytes(), image.shape[1], image.shape[0])
                    if self.detector is not None:
                        hit = self.detector.feed(image, time.time())
                        if hit is not None:
                            self.feed.motion_from_thread(hit, jpeg.tobytes())
                error = "stream ended" if got_frame else "could not open the stream"
            except Exception as exc:  # a broken frame or codec must not end the reader
                log.exception("camera %s: reader error", self.feed.camera_id)
                error = f"reader error: {type(exc).__name__}"
            finally:
                if cap is not None:
                    cap.release()
            if self.stop_event.is_set():
                break
            if got_frame:
                down_since = time.monotonic()
            self.feed.set_offline(error)
            if not faulted and time.monotonic() - down_since >= cfg.fault_after_s:
                faulted = True
                self.feed.report_health(False, error)
            log.info("camera %s: %s; retrying in %.1f s", self.feed.camera_id, error, backoff)
            self.stop_event.wait(backoff)
            backoff = min(backoff * 2, cfg.backoff_max_s)


def probe_stream(url: str, timeout_s: float) -> tuple[int, int] | None:
    """Opens a stream and reads one frame (blocking); its (width, height), or None if no video came."""
    import cv2

    ms = int(timeout_s * 1000)
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                 cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    try:
        if not cap.isOpened():
            return None
        ok, image = cap.read()
        return (int(image.shape[1]), int(image.shape[0])) if ok and image is not None else None
    finally:
        cap.release()


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
        self._reader: _Reader | None = None
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
        self._reader = _Reader(self, spec, self._config)
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
