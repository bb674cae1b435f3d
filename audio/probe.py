"""What an uploaded file really is, asked of ffprobe — never of its name or its Content-Type."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Containers a recorded bulletin plausibly comes in; anything else is refused even if ffmpeg can read it
#: (ffmpeg also opens playlists, image sequences and concat files, none of which is a recording).
ALLOWED_FORMATS = frozenset({"mp3", "ogg", "wav", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "aac", "aiff",
                             "amr", "w64"})


class ProbeError(ValueError):
    """The file is not an acceptable recording; the message says why, in words an officer understands."""


@dataclass(frozen=True, slots=True)
class AudioProbe:
    """The facts about a recording that the upload rules look at."""

    format_name: str
    codec: str
    duration_s: float
    sample_rate: int
    channels: int


def probe_audio(path: Path, max_duration_s: float, timeout_s: float = 30.0) -> AudioProbe:
    """Checks that ``path`` is one audio recording of acceptable length; raises ProbeError otherwise.

    A still picture attached to an MP3 (cover art) is tolerated and later dropped; any real video,
    subtitle or data stream is refused.
    """
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise ProbeError("the file could not be examined in time") from None
    except FileNotFoundError:
        raise ProbeError("ffprobe is not installed on the controller") from None
    if proc.returncode != 0:
        raise ProbeError("not a readable audio file")
    try:
        info: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise ProbeError("not a readable audio file") from None
    fmt = info.get("format") or {}
    format_name = str(fmt.get("format_name", ""))
    if format_name not in ALLOWED_FORMATS:
        raise ProbeError(f"unsupported file type {format_name or 'unknown'!r}; send MP3, Ogg, WAV, FLAC or M4A")
    streams: list[dict[str, Any]] = info.get("streams") or []
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    other = [s for s in streams if s.get("codec_type") != "audio"
             and not (s.get("codec_type") == "video" and (s.get("disposition") or {}).get("attached_pic") == 1)]
    if not audio:
        raise ProbeError("the file has no audio")
    if other:
        kinds = sorted({str(s.get("codec_type")) for s in other})
        raise ProbeError(f"only audio is accepted; the file also holds {', '.join(kinds)}")
    if len(audio) > 1:
        raise ProbeError("the file holds more than one audio track")
    try:
        duration = float(fmt.get("duration") or audio[0].get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0.2:
        raise ProbeError("the recording is empty or too short")
    if duration > max_duration_s:
        raise ProbeError(f"the recording lasts {duration / 60:.1f} min; the limit is {max_duration_s / 60:.0f} min")
    return AudioProbe(format_name=format_name, codec=str(audio[0].get("codec_name", "")), duration_s=duration,
                      sample_rate=int(audio[0].get("sample_rate") or 0), channels=int(audio[0].get("channels") or 0))
