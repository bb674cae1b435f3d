"""The default opening and closing chimes, synthesised by ffmpeg from sine formulas at run time.

No audio asset ships with the package: a chime is three soft bell-like notes (a major triad, rising
to open, falling to close), each a sine plus a quieter octave partial with an exponential decay. The
file is generated once into a directory the caller owns (the speech cache) and reused.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from audio.speech import SpeechError

ChimeKind = Literal["start", "end"]

#: C5, E5, G5 in Hz: a major triad reads as "attention, please" without sounding like an alarm.
_TRIAD = (523.25, 659.26, 783.99)
_NOTE_GAP_S = 0.32
_DECAY = 3.2
_LENGTH_S = 1.9
#: Bump when the formula changes so cached files are regenerated.
CHIME_VERSION = 1


def chime_expression(kind: ChimeKind) -> str:
    """The ``aevalsrc`` expression for a chime (rising triad for ``start``, falling for ``end``)."""
    notes = _TRIAD if kind == "start" else tuple(reversed(_TRIAD))
    terms = []
    for i, freq in enumerate(notes):
        onset = i * _NOTE_GAP_S
        # gte() gates each note on at its onset; the octave partial at a fifth of the level adds a bell tone.
        terms.append(f"gte(t,{onset})*exp(-{_DECAY}*(t-{onset}))*(0.22*sin(2*PI*{freq}*(t-{onset}))"
                     f"+0.045*sin(2*PI*{2 * freq}*(t-{onset})))")
    return "+".join(terms)


def default_chime(kind: ChimeKind, directory: Path, ffmpeg: str = "ffmpeg", timeout_s: float = 30.0) -> Path:
    """Path of the default chime WAV (48 kHz mono) in ``directory``, generating it on first use."""
    target = directory / f"chime-{kind}-v{CHIME_VERSION}.wav"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".chime-{kind}-", suffix=".wav", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    # A 10 ms fade-in and a 0.4 s fade-out keep the edges free of clicks.
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"aevalsrc=exprs='{chime_expression(kind)}':s=48000:d={_LENGTH_S}",
           "-af", f"afade=t=in:d=0.01,afade=t=out:st={_LENGTH_S - 0.4}:d=0.4",
           "-ac", "1", "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-flags:a", "+bitexact", str(tmp)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        tmp.unlink(missing_ok=True)
        raise SpeechError(f"cannot generate the {kind} chime: {exc}") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SpeechError(f"cannot generate the {kind} chime: {proc.stderr.decode(errors='replace')[-300:]}")
    # Atomic rename: concurrent first uses each write their own temp file and the last rename wins intact.
    os.replace(tmp, target)
    return target
