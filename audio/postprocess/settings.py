"""What post-processing is asked to do (:class:`PostProcessSettings`) and what it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audio.speech import SpeechError

__all__ = ["SAMPLE_RATE", "ChimeSetting", "Loudness", "NothingToSay", "PostProcessSettings", "ProcessedAudio"]

SAMPLE_RATE = 48000


class NothingToSay(SpeechError):
    """The text (after normalisation) or the audio it produced holds nothing to speak; maps to 422."""


ChimeSetting = Path | Literal["default"] | None


class PostProcessSettings(BaseModel):
    """How raw speech becomes the file the speakers play."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loudness_lufs: float = Field(default=-16.0, ge=-40.0, le=-5.0)
    true_peak_db: float = Field(default=-1.0, ge=-9.0, le=0.0)
    loudness_range: float = Field(default=11.0, ge=1.0, le=50.0)
    silence_threshold_db: float = Field(default=-50.0, ge=-90.0, le=-20.0)
    #: Silence kept at each end after trimming, so speech does not start abruptly.
    keep_silence_s: float = Field(default=0.1, ge=0.0, le=2.0)
    #: A file of the site's own, "default" for the built-in sine chime, or None for none.
    chime_start: ChimeSetting = None
    chime_end: ChimeSetting = None
    #: Pause between a chime and the speech.
    chime_gap_s: float = Field(default=0.3, ge=0.0, le=5.0)
    #: 40 kb/s at complexity 5 scores as well as 32 kb/s at complexity 10 (wideband PESQ 3.94 vs 3.97 on
    #: espeak-ng, 4.44 vs 4.43 on Piper) for half the encoder's CPU time and 25% more bytes.
    opus_bitrate: str = Field(default="40k", pattern=r"^[0-9]{1,3}k$")
    #: libopus effort, 0-10: 10 costs twice the time of 5; below 5 the quality drops quickly (PESQ 3.0 at 3).
    opus_complexity: int = Field(default=5, ge=0, le=10)
    #: True: every render also writes ``speech.mp3``. False: only when a caller asks (``render(..., mp3=True)``).
    #: Either way the MP3 is the finished Opus file re-encoded, so it does not change the Opus file or its key.
    mp3: bool = False
    mp3_bitrate: str = Field(default="64k", pattern=r"^[0-9]{1,3}k$")
    ffmpeg: str = "ffmpeg"
    #: Limit for each ffmpeg run.
    ffmpeg_timeout_s: float = Field(default=120.0, gt=0)


@dataclass(frozen=True, slots=True)
class Loudness:
    """An EBU R128 measurement (ffmpeg's ebur128 summary)."""

    integrated_lufs: float
    true_peak_db: float
    lra: float
    threshold: float

    @property
    def measurable(self) -> bool:
        """False for silence or audio too short to gate (ebur128 reports -70, some tools -inf)."""
        return math.isfinite(self.integrated_lufs) and self.integrated_lufs > -69.0


@dataclass(frozen=True, slots=True)
class ProcessedAudio:
    """The post-processed files and what was measured on the final Opus file."""

    opus_path: Path
    mp3_path: Path | None
    sha256: str
    size: int
    duration_ms: int
    sample_rate: int
    loudness_lufs: float
    true_peak_db: float
    #: Loudness of the trimmed engine output before normalisation.
    source_loudness_lufs: float
    #: True when a limiter had to tame peaks so that the gain could stay linear.
    limited: bool
