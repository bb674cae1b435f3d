"""Raw engine audio → trimmed, loudness-normalised Opus (and MP3), with optional chimes, using ffmpeg.

Steps, each one ffmpeg run:

1. decode, downmix to mono, trim silence at both ends (``silenceremove`` forwards, then again on the
   reversed signal), resample to 48 kHz — and, in the same run, measure it with ``loudnorm`` (pass 1);
2. only when the gain to the target would push peaks past the ceiling: a look-ahead limiter at the
   level that leaves room for that gain, re-measured, so that pass 2 can stay linear (one-pass and
   "dynamic" loudnorm pump and miss the target — FIELD-NOTES saw −17.3 for −16);
3. pass 2: ``loudnorm`` with the measured values and ``linear=true``, concatenated between the chimes
   (each normalised the same way once and kept in the chime directory);
4. encode Opus (Ogg, 48 kHz mono) and MP3 from that master;
5. measure the Opus file as a listener gets it (integrated loudness and true peak).

Blocking code: callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audio.chimes import default_chime
from audio.speech import SpeechError, file_sha256

__all__ = [
    "SAMPLE_RATE",
    "Loudness",
    "NothingToSay",
    "PostProcessSettings",
    "ProcessedAudio",
    "measure_loudness",
    "postprocess",
]

SAMPLE_RATE = 48000
#: Headroom kept below the true-peak target before encoding: Opus at 32 kb/s overshoots espeak-ng's buzzy
#: voice by 1.5-2.5 dB, and limiting harder buys less than it costs (the gain then rises), hence the margin.
_PEAK_MARGIN_DB = 4.5
#: Shorter than one 400 ms gating block, integrated loudness is undefined.
_MIN_MEASURABLE_S = 0.5
#: loudnorm buffers 3 s windows; below that its second pass is unreliable.
_LOUDNORM_MIN_S = 3.0
#: Tries at the peak margin when the encoded file still overshoots the true-peak ceiling.
_PEAK_RETRIES = 3


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
    opus_bitrate: str = Field(default="32k", pattern=r"^[0-9]{1,3}k$")
    mp3: bool = True
    mp3_bitrate: str = Field(default="64k", pattern=r"^[0-9]{1,3}k$")
    ffmpeg: str = "ffmpeg"
    #: Limit for each ffmpeg run.
    ffmpeg_timeout_s: float = Field(default=120.0, gt=0)


@dataclass(frozen=True, slots=True)
class Loudness:
    """An EBU R128 measurement (ffmpeg loudnorm's analysis)."""

    integrated_lufs: float
    true_peak_db: float
    lra: float
    threshold: float

    @property
    def measurable(self) -> bool:
        """False for silence or audio too short to gate (loudnorm reports -inf or -70)."""
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


def _ffmpeg(settings: PostProcessSettings, args: list[str], what: str) -> str:
    cmd = [settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=settings.ffmpeg_timeout_s, check=False)
    except FileNotFoundError:
        raise SpeechError(f"{what}: {settings.ffmpeg} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{what}: ffmpeg timed out after {settings.ffmpeg_timeout_s:g}s") from None
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SpeechError(f"{what}: ffmpeg failed ({proc.returncode}): {stderr[-400:]}")
    return stderr


_JSON_BLOCK = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.S)


def _parse_loudnorm(stderr: str, what: str) -> Loudness:
    blocks = _JSON_BLOCK.findall(stderr)
    if not blocks:
        raise SpeechError(f"{what}: ffmpeg printed no loudness measurement")
    data = json.loads(blocks[-1])

    def num(key: str) -> float:
        # loudnorm prints "-inf" for silence; float() reads it.
        return float(data[key])

    return Loudness(integrated_lufs=num("input_i"), true_peak_db=num("input_tp"), lra=num("input_lra"),
                    threshold=num("input_thresh"))


def _loudnorm_args(settings: PostProcessSettings) -> str:
    return f"I={settings.loudness_lufs}:TP={settings.true_peak_db}:LRA={settings.loudness_range}"


def _process_and_measure(src: Path, dst: Path, chain: str, settings: PostProcessSettings, what: str) -> Loudness:
    """Writes ``chain`` applied to ``src`` as a 48 kHz mono 24-bit WAV and measures that same signal."""
    graph = (f"[0:a]{chain},aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono,asplit[out][m];"
             f"[m]loudnorm={_loudnorm_args(settings)}:print_format=json,anullsink")
    stderr = _ffmpeg(settings, ["-i", str(src), "-filter_complex", graph, "-map", "[out]",
                                "-c:a", "pcm_s24le", str(dst)], what)
    return _parse_loudnorm(stderr, what)


_EBU_SUMMARY = re.compile(r"Integrated loudness:\s*I:\s*(?P<i>-?[0-9.]+|-?inf) LUFS"
                          r"\s*Threshold:\s*(?P<thr>-?[0-9.]+|-?inf)"
                          r".*?LRA:\s*(?P<lra>-?[0-9.]+|-?inf) LU.*?True peak:\s*Peak:\s*(?P<tp>-?[0-9.]+|-?inf)", re.S)


def measure_loudness(path: Path, settings: PostProcessSettings | None = None) -> Loudness:
    """Integrated loudness and true peak of any file ffmpeg can decode (ebur128: 3x faster than loudnorm)."""
    settings = settings or PostProcessSettings()
    what = f"measuring {path.name}"
    stderr = _ffmpeg(settings, ["-i", str(path), "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"], what)
    found = _EBU_SUMMARY.search(stderr[stderr.rfind("Summary:"):])
    if found is None:
        raise SpeechError(f"{what}: ffmpeg printed no loudness summary")
    return Loudness(integrated_lufs=float(found["i"]), true_peak_db=float(found["tp"]), lra=float(found["lra"]),
                    threshold=float(found["thr"]))


def _wav_seconds(path: Path) -> float:
    """Length of a PCM WAV; reads the RIFF chunks itself because ``wave`` rejects 24-bit (extensible) files."""
    with path.open("rb") as fh:
        header = fh.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise SpeechError(f"{path.name} is not a WAV file")
        rate = block_align = 0
        while chunk := fh.read(8):
            if len(chunk) < 8:
                break
            ident, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if ident == b"fmt ":
                fmt = fh.read(size)
                rate = int.from_bytes(fmt[4:8], "little")
                block_align = int.from_bytes(fmt[12:14], "little")
                continue
            if ident == b"data" and rate and block_align:
                return size / block_align / rate
            fh.seek(size + (size & 1), os.SEEK_CUR)
    raise SpeechError(f"{path.name}: WAV without audio data")


def _prepare(src: Path, work: Path, name: str, trim: bool, settings: PostProcessSettings) -> tuple[Path, Loudness]:
    """Pass 1: decode, (trim,) resample to 48 kHz mono and measure with loudnorm."""
    thr = settings.silence_threshold_db
    keep = settings.keep_silence_s
    trim_one_end = f"silenceremove=start_periods=1:start_threshold={thr}dB:start_silence={keep}"
    chain = f"aformat=channel_layouts=mono,{trim_one_end},areverse,{trim_one_end},areverse" if trim \
        else "aformat=channel_layouts=mono"
    # Padding a very short word ("Alô") to one gating block keeps its integrated loudness defined.
    chain += f",apad=whole_dur={_MIN_MEASURABLE_S}"
    prepared = work / f"{name}-prepared.wav"
    measured = _process_and_measure(src, prepared, chain, settings, f"{name}: trim and measure")
    if not measured.measurable:
        raise NothingToSay(f"{name}: the audio is silent")
    return prepared, measured


def _limit(prepared: Path, measured: Loudness, work: Path, name: str, settings: PostProcessSettings,
           margin_db: float) -> tuple[Path, Loudness, bool]:
    """When the gain to the target would lift peaks past the ceiling, limits them first (and re-measures)."""
    gain = settings.loudness_lufs - measured.integrated_lufs
    ceiling_db = settings.true_peak_db - margin_db - gain
    if measured.true_peak_db <= ceiling_db:
        return prepared, measured, False
    # alimiter's range ends at -24 dBFS; a signal needing more than that goes to loudnorm as it is.
    limit = min(1.0, max(0.0625, 10 ** (ceiling_db / 20)))
    limited = work / f"{name}-limited.wav"
    measured = _process_and_measure(prepared, limited, f"alimiter=limit={limit:.5f}:attack=5:release=50:level=0"
                                    ":latency=1", settings, f"{name}: limit and measure")
    return limited, measured, True


def _pass2_filter(label: str, measured: Loudness, settings: PostProcessSettings, seconds: float) -> str:
    tail = f"aresample={SAMPLE_RATE},aformat=sample_fmts=s16:sample_rates={SAMPLE_RATE}:channel_layouts=mono"
    if seconds < _LOUDNORM_MIN_S:
        # loudnorm's linear mode misjudges inputs under 3 s (a 2.4 s clip measured at -22 came out at -29 for a
        # -16 target); its linear mode is this same gain, so apply it directly.
        return f"{label}volume={settings.loudness_lufs - measured.integrated_lufs:.2f}dB,{tail}"
    # Pass 2 with measured_* and linear=true is a plain gain as long as measured TP + gain stays under TP,
    # which _limit made sure of.
    return (f"{label}loudnorm={_loudnorm_args(settings)}:measured_I={measured.integrated_lufs}"
            f":measured_TP={measured.true_peak_db}:measured_LRA={measured.lra}"
            f":measured_thresh={measured.threshold}:offset=0:linear=true,{tail}")


def _chime_file(setting: ChimeSetting, kind: Literal["start", "end"], chime_dir: Path,
                settings: PostProcessSettings) -> Path | None:
    """The chime, normalised to the target once and kept in ``chime_dir`` (keyed by content and target)."""
    if setting is None:
        return None
    source = default_chime(kind, chime_dir, settings.ffmpeg, settings.ffmpeg_timeout_s) if setting == "default" \
        else Path(setting)
    if not source.is_file():
        raise SpeechError(f"chime file not found: {source}")
    key = hashlib.sha256(f"{file_sha256(source)}|{settings.loudness_lufs}|{settings.true_peak_db}|"
                         f"{settings.loudness_range}".encode()).hexdigest()[:24]
    target = chime_dir / f"chime-{kind}-{key}.wav"
    if target.is_file():
        return target
    chime_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=chime_dir) as tmp:
        work = Path(tmp)
        prepared, measured = _prepare(source, work, f"chime-{kind}", False, settings)
        ready, measured, _ = _limit(prepared, measured, work, f"chime-{kind}", settings, _PEAK_MARGIN_DB)
        out = work / "chime.wav"
        _ffmpeg(settings, ["-i", str(ready), "-af", _pass2_filter("", measured, settings, _wav_seconds(ready)),
                           "-c:a", "pcm_s16le", str(out)], f"normalising the {kind} chime")
        os.replace(out, target)  # atomic: concurrent renders of the same chime each write a whole file
    return target


_BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]


def _encode_opus(master: Path, out_dir: Path, settings: PostProcessSettings) -> Path:
    opus = out_dir / "speech.ogg"
    # Reproducible bytes: the same master always gives the same file and so the same sha256.
    _ffmpeg(settings, ["-i", str(master), "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "libopus",
                       "-b:a", settings.opus_bitrate, "-application", "voip", *_BITEXACT, "-f", "ogg", str(opus)],
            "Opus encode")
    return opus


def _encode_mp3(master: Path, out_dir: Path, settings: PostProcessSettings) -> Path:
    mp3 = out_dir / "speech.mp3"
    _ffmpeg(settings, ["-i", str(master), "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "libmp3lame",
                       "-b:a", settings.mp3_bitrate, *_BITEXACT, "-id3v2_version", "0", "-write_xing", "0",
                       "-f", "mp3", str(mp3)], "MP3 encode")
    return mp3


def postprocess(source: Path, out_dir: Path, settings: PostProcessSettings, chime_dir: Path) -> ProcessedAudio:
    """Turns an engine's raw file into ``speech.ogg`` (and ``speech.mp3``) inside ``out_dir``.

    ``chime_dir`` keeps the generated default chimes and the loudness-matched copies of chimes.
    Raises :class:`NothingToSay` when the audio is silent, :class:`SpeechError` when ffmpeg fails.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    start = _chime_file(settings.chime_start, "start", chime_dir, settings)
    end = _chime_file(settings.chime_end, "end", chime_dir, settings)
    margin = _PEAK_MARGIN_DB
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        work = Path(tmp)
        prepared, source_loudness = _prepare(source, work, "speech", True, settings)
        for attempt in range(_PEAK_RETRIES):
            speech, measured, limited = _limit(prepared, source_loudness, work, "speech", settings, margin)
            master = work / "master.wav"
            _ffmpeg(settings, [*_concat_args(start, speech, end, measured, settings), "-ac", "1",
                               "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(master)], "normalising (pass 2)")
            opus = _encode_opus(master, out_dir, settings)
            final = measure_loudness(opus, settings)
            overshoot = final.true_peak_db - settings.true_peak_db
            if overshoot <= 0 or attempt == _PEAK_RETRIES - 1:
                break
            # Opus overshot the ceiling: limit harder and redo. Extra margin buys about half its size in peak.
            margin += 2 * overshoot + 0.5
        mp3 = _encode_mp3(master, out_dir, settings) if settings.mp3 else None
        duration_ms = round(_wav_seconds(master) * 1000)
    return ProcessedAudio(opus_path=opus, mp3_path=mp3, sha256=file_sha256(opus), size=opus.stat().st_size,
                          duration_ms=duration_ms, sample_rate=SAMPLE_RATE, loudness_lufs=final.integrated_lufs,
                          true_peak_db=final.true_peak_db, source_loudness_lufs=source_loudness.integrated_lufs,
                          limited=limited)


def _concat_args(start: Path | None, speech: Path, end: Path | None, measured: Loudness,
                 settings: PostProcessSettings) -> list[str]:
    """ffmpeg inputs and graph: [start chime + gap] + pass-2 speech + [gap + end chime] → ``[out]``."""
    inputs: list[str] = []
    parts: list[str] = []
    graph: list[str] = []
    gap = settings.chime_gap_s
    if start is not None:
        inputs += ["-i", str(start)]
        graph.append(f"[{len(parts)}:a]apad=pad_dur={gap}[p{len(parts)}]")
        parts.append(f"[p{len(parts)}]")
    inputs += ["-i", str(speech)]
    graph.append(_pass2_filter(f"[{len(parts)}:a]", measured, settings, _wav_seconds(speech)) + f"[p{len(parts)}]")
    parts.append(f"[p{len(parts)}]")
    if end is not None:
        inputs += ["-i", str(end)]
        graph.append(f"[{len(parts)}:a]adelay=delays={round(gap * 1000)}:all=1[p{len(parts)}]")
        parts.append(f"[p{len(parts)}]")
    graph.append(f"{''.join(parts)}concat=n={len(parts)}:v=0:a=1[out]")
    return [*inputs, "-filter_complex", ";".join(graph), "-map", "[out]"]


def tools_missing(settings: PostProcessSettings | None = None) -> list[str]:
    """External programs post-processing needs that are not on PATH."""
    settings = settings or PostProcessSettings()
    return [t for t in (settings.ffmpeg,) if shutil.which(t) is None]
