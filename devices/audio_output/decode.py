"""Decoding media to the WAV an output plays: opusdec for Ogg Opus (small), ffmpeg for anything else."""

from __future__ import annotations

import math
import shutil
import subprocess
import uuid
from pathlib import Path

from devices.audio_output.playback import SINK_CHANNELS, SINK_RATE, OutputError


def is_ogg_opus(media: Path) -> bool:
    """True for an Ogg file whose first stream is Opus (what the controller's speech always is)."""
    try:
        with media.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    return head.startswith(b"OggS") and b"OpusHead" in head


def decode_command(media: Path, out: Path, volume: int) -> list[str]:
    """The command that decodes ``media`` to a WAV at ``out`` (opusdec for Ogg Opus, else ffmpeg)."""
    if is_ogg_opus(media) and shutil.which("opusdec"):
        # The reference decoder needs about 4 MB where ffmpeg needs about 50: on a 512 MB Pi that is
        # the difference between the agent's peak staying under its 80 MB budget or not.
        gain_db = 20 * math.log10(max(volume, 1) / 100)
        return ["opusdec", "--quiet", "--rate", str(SINK_RATE), "--no-dither", "--force-wav",
                "--gain", f"{gain_db:.2f}", str(media), str(out)]
    gain = [] if volume == 100 else ["-af", f"volume={volume / 100:.2f}"]
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(media),
            "-map", "0:a:0", *gain, "-ac", str(SINK_CHANNELS), "-ar", str(SINK_RATE), "-c:a", "pcm_s16le",
            "-f", "wav", "-bitexact", str(out)]


def decode_to_wav(media: Path, out: Path, volume: int = 100) -> None:
    """Decodes audio to 16-bit WAV at 48 kHz, scaled by ``volume`` percent (100 = the exact samples).

    Ogg Opus goes through ``opusdec`` (libopus, no dither) when it is installed, anything else
    through ffmpeg.
    """
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")  # concurrent decodes never share a file
    cmd = decode_command(media, tmp, volume)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{cmd[0]} could not run: {exc}") from exc
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{cmd[0]} cannot decode {media.name}: {proc.stderr.decode(errors='replace')[-300:]}")
    tmp.replace(out)
