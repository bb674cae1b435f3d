"""Motion detection on the gateway's decoded frames: background subtraction inside zones, debounced.

OpenCV's MOG2 learns the background of a small grey copy of each frame; the share of foreground
pixels inside the camera's zones is the frame's motion score. An event fires when the score stays
above the sensitivity's threshold for ``min_frames`` frames in a row, and then not again for
``cooldown_s``, so a person walking through is one event, not fifty. Runs in the reader thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Width the detector works at; motion does not need full resolution and this keeps it cheap.
WORK_WIDTH = 320
#: Frames the background model learns from before any score counts.
WARMUP_FRAMES = 20

Point = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=2, max_length=2)]


class MotionZone(BaseModel):
    """A polygon in frame coordinates (0–1 from the top-left corner) where motion counts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)
    points: list[Point] = Field(min_length=3, max_length=32)


class MotionSettings(BaseModel):
    """A camera's motion detection: off by default; no zones means the whole frame."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    #: 0 (only large movements) … 1 (the slightest change).
    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    zones: list[MotionZone] = Field(default_factory=list, max_length=16)
    #: Frames in a row with motion before an event fires (debounce against noise and flicker).
    min_frames: int = Field(default=3, ge=1, le=100)
    #: Seconds after an event before the same camera can fire again.
    cooldown_s: float = Field(default=10.0, ge=0.0, le=3600.0)

    def threshold(self) -> float:
        """Share of zone pixels that must be foreground: 0.2 % at sensitivity 1, 10 % at 0."""
        return 0.002 + (1.0 - self.sensitivity) * 0.098


@dataclass(frozen=True, slots=True)
class MotionHit:
    """One debounced motion event: when, how much of the zones moved, the frame as JPEG."""

    ts: float
    score: float
    snapshot: bytes = b""

    def with_snapshot(self, jpeg: bytes) -> MotionHit:
        """The same hit carrying the frame it was seen in."""
        return replace(self, snapshot=jpeg)


class MotionDetector:
    """Scores frames and debounces the scores into hits (one detector per reader, one thread)."""

    def __init__(self, settings: MotionSettings) -> None:
        import cv2

        self._cv2: Any = cv2
        self.settings = settings
        self._threshold = settings.threshold()
        self._subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
        self._kernel = np.ones((3, 3), np.uint8)
        self._mask: np.ndarray[Any, Any] | None = None
        self._mask_pixels = 0
        self._shape: tuple[int, ...] = ()
        self._frames = 0
        self._streak = 0
        self._last_hit: float | None = None
        self.last_score = 0.0

    def _zone_mask(self, height: int, width: int) -> None:
        cv2 = self._cv2
        if not self.settings.zones:
            self._mask = None
            self._mask_pixels = height * width
            return
        mask = np.zeros((height, width), np.uint8)
        for zone in self.settings.zones:
            pts = np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in zone.points], np.int32)
            cv2.fillPoly(mask, [pts], 255)
        self._mask = mask
        self._mask_pixels = max(1, int(cv2.countNonZero(mask)))

    def score(self, image: np.ndarray[Any, Any]) -> float:
        """The share of zone pixels that moved in this frame (0–1); also teaches the background."""
        cv2 = self._cv2
        h, w = image.shape[:2]
        small_h = max(1, round(h * WORK_WIDTH / w))
        small = cv2.resize(image, (WORK_WIDTH, small_h), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        if grey.shape != self._shape:
            self._shape = grey.shape
            self._zone_mask(*grey.shape)
        fg = self._subtractor.apply(grey)
        # 255 is foreground; 127 marks shadows, which are not motion.
        _, fg = cv2.threshold(fg, 200, 255, cv2.THRESH_BINARY)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        if self._mask is not None:
            fg = cv2.bitwise_and(fg, self._mask)
        return float(cv2.countNonZero(fg)) / self._mask_pixels

    def feed(self, image: np.ndarray[Any, Any], now: float) -> MotionHit | None:
        """Scores one frame; returns a hit when debounced motion starts an event."""
        self._frames += 1
        score = self.score(image)
        self.last_score = score
        if self._frames <= WARMUP_FRAMES:
            return None
        if score < self._threshold:
            self._streak = 0
            return None
        self._streak += 1
        if self._streak < self.settings.min_frames:
            return None
        if self._last_hit is not None and now - self._last_hit < self.settings.cooldown_s:
            return None
        self._last_hit = now
        return MotionHit(ts=now, score=round(score, 4))
