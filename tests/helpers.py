"""Small helpers shared by the tests (audio decoding, timestamps)."""

from __future__ import annotations

import hashlib
import subprocess
import wave
from datetime import datetime
from pathlib import Path

#: How far from its start time a test accepts a play's first sample. Tests check that a play was aimed at its
#: start time (not early, not a wrong clock or a missed schedule); how close speakers get to it, and to each other,
#: is measured by bench/start_skew.py and bench/fanout.py, not asserted: a busy CI machine delays a wake-up.
START_TOLERANCE_MS = 1000


def iso_ms(value: str) -> int:
    """ISO 8601 from the API → ms since epoch."""
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def decode_pcm(media: bytes, tmp: Path) -> bytes:
    """Decodes Ogg Opus with the reference decoder (opusdec, no dither), outside the agent: 48 kHz s16le."""
    src = tmp / f"{hashlib.sha256(media).hexdigest()[:16]}.ogg"
    src.write_bytes(media)
    out = subprocess.run(["opusdec", "--quiet", "--rate", "48000", "--no-dither", str(src), "-"],
                         capture_output=True, timeout=60, check=True)
    return out.stdout


def wav_frames(path: Path) -> bytes:
    """The sample data of a WAV file."""
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        return w.readframes(w.getnframes())
