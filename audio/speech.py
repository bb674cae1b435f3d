"""Text → Opus speech: espeak-ng's Vietnamese voice, encoded by ffmpeg.

The engine chain, normalisation and loudness arrive with their own issue; this module is the one
place that turns text into a playable file today, and what it returns records which engine spoke.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

#: espeak-ng voices that read Vietnamese (Northern, Central, Southern).
VIETNAMESE_VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")


class SpeechError(RuntimeError):
    """Speech could not be rendered; the message says which step failed and why."""


@dataclass(frozen=True, slots=True)
class SpeechSettings:
    """How speech is rendered."""

    voice: str = "vi"
    rate_wpm: int = 150
    pitch: int = 50
    opus_bitrate: str = "32k"
    espeak: str = "espeak-ng"
    ffmpeg: str = "ffmpeg"
    timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class RenderedSpeech:
    """An encoded file ready for the media store."""

    path: Path
    sha256: str
    size: int
    duration_ms: int
    mime: str
    engine: str


def _run(cmd: list[str], what: str, timeout: float, stdin: bytes | None = None) -> None:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SpeechError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{what}: timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise SpeechError(f"{what} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}")


def synthesize_wav(text: str, out: Path, settings: SpeechSettings) -> None:
    """espeak-ng speaks ``text`` into a WAV file; the text goes on stdin so it is never an option."""
    if not text.strip():
        raise SpeechError("nothing to say")
    cmd = [settings.espeak, "-v", settings.voice, "-s", str(settings.rate_wpm), "-p", str(settings.pitch),
           "-b", "1", "--stdin", "-w", str(out)]
    _run(cmd, "espeak-ng", settings.timeout_s, stdin=text.encode("utf-8"))
    if not out.exists() or out.stat().st_size <= 44:
        raise SpeechError("espeak-ng produced no audio")


def wav_duration_ms(path: Path) -> int:
    """Length of a PCM WAV file in milliseconds."""
    with wave.open(str(path), "rb") as w:
        return round(w.getnframes() * 1000 / w.getframerate())


def encode_opus(wav: Path, out: Path, settings: SpeechSettings) -> None:
    """Encodes speech to mono 48 kHz Opus in Ogg, reproducibly (same input → same bytes)."""
    cmd = [settings.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav),
           "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", settings.opus_bitrate,
           "-application", "voip", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
           "-f", "ogg", str(out)]
    _run(cmd, "ffmpeg opus encode", settings.timeout_s)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def render_speech(text: str, workdir: Path, settings: SpeechSettings | None = None) -> RenderedSpeech:
    """Renders ``text`` to an Opus file inside ``workdir`` (the caller moves it into its store)."""
    settings = settings or SpeechSettings()
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        wav = Path(tmp) / "speech.wav"
        synthesize_wav(text, wav, settings)
        duration = wav_duration_ms(wav)
        out = workdir / f"speech-{uuid.uuid4().hex}.ogg"
        encode_opus(wav, out, settings)
    return RenderedSpeech(path=out, sha256=file_sha256(out), size=out.stat().st_size, duration_ms=duration,
                          mime="audio/ogg", engine=f"espeak-ng:{settings.voice}")


def tools_available(settings: SpeechSettings | None = None) -> list[str]:
    """Names of the external programs that are missing (empty when speech can be rendered)."""
    settings = settings or SpeechSettings()
    return [tool for tool in (settings.espeak, settings.ffmpeg) if shutil.which(tool) is None]
