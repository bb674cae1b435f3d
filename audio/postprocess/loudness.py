"""Measuring: ffmpeg's ``ebur128`` and ``astats`` meters and their summaries, a WAV's length, and pass 1
(decode, downmix, trim the silence at both ends and measure, in one run)."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from audio.postprocess.ffmpeg import run_ffmpeg
from audio.postprocess.settings import SAMPLE_RATE, Loudness, NothingToSay, PostProcessSettings
from audio.speech import SpeechError

__all__ = ["ebur128_meter", "measure_loudness", "parse_ebur128", "prepare", "prepare_args", "prepared_loudness",
           "wav_seconds"]

#: Shorter than one 400 ms gating block, integrated loudness is undefined.
_MIN_MEASURABLE_S = 0.5
_SUMMARY = re.compile(r"^\[ebur128@(?P<name>[^\s\]]+) @ [^\]]*\] Summary:$", re.M)
_NUMBER = r"(-?(?:[0-9]+(?:\.[0-9]*)?|inf))"
_SUMMARY_I = re.compile(rf"Integrated loudness:\s*I:\s*{_NUMBER} LUFS\s*Threshold:\s*{_NUMBER}")
_SUMMARY_LRA = re.compile(rf"LRA:\s*{_NUMBER} LU")
_SUMMARY_TP = re.compile(rf"True peak:\s*Peak:\s*{_NUMBER}")


def parse_ebur128(stderr: str, what: str) -> dict[str, Loudness]:
    """The ``ebur128`` summaries in ``stderr`` by filter instance name (``ebur128@name``).

    The last summary of each name wins: ffmpeg prints an empty one when it reconfigures a graph.
    A measurement without ``peak=true`` has a true peak of ``-inf``.
    """
    found: dict[str, Loudness] = {}
    heads = list(_SUMMARY.finditer(stderr))
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        block = stderr[head.end():following.start() if following else len(stderr)]
        integrated = _SUMMARY_I.search(block)
        if integrated is None:
            continue
        lra = _SUMMARY_LRA.search(block)
        peak = _SUMMARY_TP.search(block)
        found[head["name"]] = Loudness(integrated_lufs=float(integrated[1]), threshold=float(integrated[2]),
                                       lra=float(lra[1]) if lra else 0.0,
                                       true_peak_db=float(peak[1]) if peak else -math.inf)
    if not found:
        raise SpeechError(f"{what}: ffmpeg printed no loudness summary")
    return found


_PEAK = re.compile(r"^\[astats@(?P<name>[^\s\]]+) @ [^\]]*\] Peak level dB: (?P<db>-?(?:[0-9]+(?:\.[0-9]*)?|inf))$",
                   re.M)


def _peak_meter(name: str) -> str:
    """The sample peak, overall, printed when the graph ends (read back by :func:`_parse_peak`)."""
    return f"astats@{name}=measure_overall=Peak_level:measure_perchannel=none"


def _parse_peak(stderr: str, name: str, what: str) -> float:
    found = [m["db"] for m in _PEAK.finditer(stderr) if m["name"] == name]
    if not found:
        raise SpeechError(f"{what}: ffmpeg printed no peak level")
    return float(found[-1])


def ebur128_meter(name: str, true_peak: bool) -> str:
    # framelog=verbose keeps the per-frame lines out of an info-level log (ffmpeg 5 has no framelog=quiet).
    return f"ebur128@{name}={'peak=true:' if true_peak else ''}framelog=verbose"


def measure_loudness(path: Path, settings: PostProcessSettings | None = None) -> Loudness:
    """Integrated loudness and true peak of any file ffmpeg can decode (ebur128: 3x faster than loudnorm)."""
    settings = settings or PostProcessSettings()
    what = f"measuring {path.name}"
    stderr = run_ffmpeg(settings, ["-i", str(path), "-af", ebur128_meter("m", True), "-f", "null", "-"], what)
    found = parse_ebur128(stderr, what).get("m")
    if found is None:
        raise SpeechError(f"{what}: ffmpeg printed no loudness summary")
    return found


def wav_seconds(path: Path) -> float:
    """Length of a PCM WAV; reads the RIFF chunks itself because ``wave`` rejects float and 24-bit files."""
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


def prepare_args(src: str, work: Path, name: str, trim: bool,
                 settings: PostProcessSettings) -> tuple[list[str], Path]:
    """Pass 1's ffmpeg arguments (input ``src``: a path or ``pipe:0``) and the prepared file it writes."""
    thr = settings.silence_threshold_db
    keep = settings.keep_silence_s
    trim_one_end = f"silenceremove=start_periods=1:start_threshold={thr}dB:start_silence={keep}"
    chain = f"aformat=channel_layouts=mono,{trim_one_end},areverse,{trim_one_end},areverse" if trim \
        else "aformat=channel_layouts=mono"
    # Padding a very short word ("Alô") to one gating block keeps its integrated loudness defined.
    chain += f",apad=whole_dur={_MIN_MEASURABLE_S},aformat=sample_fmts=flt"
    prepared = work / f"{name}-prepared.wav"
    # Float keeps the trimmed signal exact for the gain that follows; the source rate keeps this pass cheap.
    graph = (f"[0:a]{chain},asplit=3[out][m][p];[m]{ebur128_meter('src', False)},anullsink;"
             f"[p]aresample={SAMPLE_RATE},{_peak_meter('src')},anullsink")
    return ["-i", src, "-filter_complex", graph, "-map", "[out]", "-c:a", "pcm_f32le", str(prepared)], prepared


def prepared_loudness(stderr: str, name: str, what: str) -> Loudness:
    """Pass 1's measurement. Its ``true_peak_db`` is the sample peak at 48 kHz: the peaks the limiter sees."""
    measured = parse_ebur128(stderr, what).get("src")
    if measured is None:
        raise SpeechError(f"{what}: ffmpeg printed no loudness summary")
    if not measured.measurable:
        raise NothingToSay(f"{name}: the audio is silent")
    peak = _parse_peak(stderr, "src", what)
    return Loudness(integrated_lufs=measured.integrated_lufs, true_peak_db=peak, lra=measured.lra,
                    threshold=measured.threshold)


def prepare(src: Path, work: Path, name: str, trim: bool, settings: PostProcessSettings) -> tuple[Path, Loudness]:
    """Pass 1: decode, (trim,) downmix to mono and measure, at the source rate."""
    what = f"{name}: trim and measure"
    args, prepared = prepare_args(str(src), work, name, trim, settings)
    return prepared, prepared_loudness(run_ffmpeg(settings, args, what), name, what)
