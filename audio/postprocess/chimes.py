"""The chimes around the speech, each brought to the speech's loudness target once and kept."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from audio.chimes import default_chime
from audio.postprocess.ffmpeg import BITEXACT, run_ffmpeg
from audio.postprocess.limiter import PEAK_MARGIN_DB, find_plan, level_chain
from audio.postprocess.loudness import prepare
from audio.postprocess.settings import ChimeSetting, PostProcessSettings
from audio.speech import SpeechError, file_sha256

__all__ = ["chime_file"]


def chime_file(setting: ChimeSetting, kind: Literal["start", "end"], chime_dir: Path,
               settings: PostProcessSettings) -> Path | None:
    """The chime, normalised to the target once and kept in ``chime_dir`` (keyed by content and target)."""
    if setting is None:
        return None
    source = default_chime(kind, chime_dir, settings.ffmpeg, settings.ffmpeg_timeout_s) if setting == "default" \
        else Path(setting)
    if not source.is_file():
        raise SpeechError(f"chime file not found: {source}")
    # "ebur128" in the key: chimes normalised by the former loudnorm code are redone once the new way.
    key = hashlib.sha256(f"{file_sha256(source)}|{settings.loudness_lufs}|{settings.true_peak_db}|"
                         f"{settings.loudness_range}|ebur128".encode()).hexdigest()[:24]
    target = chime_dir / f"chime-{kind}-{key}.wav"
    if target.is_file():
        return target
    chime_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=chime_dir) as tmp:
        work = Path(tmp)
        prepared, measured = prepare(source, work, f"chime-{kind}", False, settings)
        plan = find_plan(prepared, measured, f"chime-{kind}", settings, PEAK_MARGIN_DB)
        out = work / "chime.wav"
        run_ffmpeg(settings, ["-i", str(prepared), "-af", level_chain(plan), "-c:a", "pcm_s16le", *BITEXACT,
                              str(out)], f"normalising the {kind} chime")
        os.replace(out, target)  # atomic: concurrent renders of the same chime each write a whole file
    return target
