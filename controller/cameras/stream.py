"""A camera's stream: how to open it, the gateway's tuning, and the reader thread that decodes it.

The reader opens the stream with OpenCV's FFmpeg backend, decodes each frame once, encodes it to JPEG
once, runs motion detection on it and hands it to its :class:`FrameSink` (the feed); when the stream
drops it reconnects with back-off, and after ``fault_after_s`` without frames it reports the camera
faulty. :func:`probe_stream` reads one frame, for registration.

Stream addresses carry credentials: they are passed to OpenCV and never logged or shown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from controller.cameras.motion import MotionDetector, MotionHit, MotionSettings

log = logging.getLogger(__name__)

#: FFmpeg options for every capture: TCP (no lost UDP packets on busy links), small probe, no buffering.
FFMPEG_CAPTURE_OPTIONS = "rtsp_transport;tcp|analyzeduration;200000|probesize;32768|fflags;nobuffer"
# OpenCV reads this from the environment each time a capture opens. Set once here, at import (on the
# main thread), rather than from the reader threads: the environment is not safe to change concurrently.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_CAPTURE_OPTIONS)


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


class FrameSink(Protocol):
    """Where a reader thread delivers what it reads (a :class:`~controller.cameras.feed.Feed`)."""

    @property
    def camera_id(self) -> str:
        """The camera whose stream is read."""
        ...

    def frame_from_thread(self, jpeg: bytes, width: int, height: int) -> None:
        """A new frame, encoded as JPEG."""
        ...

    def motion_from_thread(self, hit: MotionHit, jpeg: bytes) -> None:
        """The motion detector fired on the frame ``jpeg``."""
        ...

    def set_offline(self, error: str) -> None:
        """The stream is down for ``error``."""
        ...

    def report_health(self, ok: bool, reason: str | None) -> None:
        """The camera came back (``ok``), or has given no frame for ``fault_after_s``."""
        ...


class StreamReader(threading.Thread):
    """Reads one stream until told to stop; reconnects with back-off."""

    def __init__(self, feed: FrameSink, spec: StreamSpec, config: GatewayConfig) -> None:
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
