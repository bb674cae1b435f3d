"""Small helpers shared by the tests (audio decoding, timestamps)."""

from __future__ import annotations

import hashlib
import subprocess
import wave
from datetime import datetime
from pathlib import Path


def iso_ms(value: str) -> int:
    """ISO 8601 from the API → ms since epoch."""
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def decode_pcm(media: bytes, tmp: Path) -> bytes:
    """Decodes audio with ffmpeg, independently of the agent, to 48 kHz mono s16le samples."""
    src = tmp / f"{hashlib.sha256(media).hexdigest()[:16]}.in"
    src.write_bytes(media)
    out = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-ac", "1", "-ar", "48000",
                          "-f", "s16le", "-c:a", "pcm_s16le", "-"], capture_output=True, timeout=60, check=True)
    return out.stdout


def wav_frames(path: Path) -> bytes:
    """The sample data of a WAV file."""
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        return w.readframes(w.getnframes())
