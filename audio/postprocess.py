"""Raw engine audio → trimmed, loudness-normalised Opus (and MP3), with optional chimes, using ffmpeg.

Steps:

1. one ffmpeg run decodes, downmixes to mono, trims silence at both ends (``silenceremove`` forwards, then
   again on the reversed signal) and, in the same run, measures the result (pass 1): integrated loudness
   with ``ebur128`` at the source rate, and the sample peak at 48 kHz, where the limiter will work
   (``astats``; ebur128's own true-peak meter oversamples to 192 kHz and tripled this pass's cost, for a
   figure that only steers the limiter search — the figure we report is measured on the Opus file);
2. only when the gain to the target would push peaks past the limiter ceiling: candidate gains are measured
   through the look-ahead limiter side by side (``asplit``), on a fixed one-second-in-three sample of long
   speech, and the gain that lands on the target is interpolated — a limiter taming espeak-ng's spiky voice
   costs several LU, so the plain gain would miss by that much;
3. pass 2 (:class:`_FinalPass`): gain (+ limiter), 48 kHz mono, the chimes concatenated in the same graph
   (each normalised the same way once and kept in the chime directory), encoded to Opus (speech settings:
   ``voip``, complexity ``opus_complexity``, 60 ms packets), while a second process decodes the Opus stream
   as it is written and measures it (integrated loudness and true peak, as a listener gets it) — and, when
   asked, encodes that decoded stream to MP3 in the same process;
4. only when that Opus measurement is out of spec (true peak over the ceiling, loudness off the target): a
   corrective pass with a lower ceiling or a corrected gain — rare.

ffmpeg takes ~0.1 s to load its libraries before it does anything, so each run is started one step ahead
and waits on its stdin for its input (:class:`_Run`): pass 1 while the engine speaks, the search while
pass 1 works, pass 2 while the search works. Every run of a render therefore costs its work, not its start.

The MP3 is always the Opus file re-encoded (:func:`mp3_from_opus` gives the same bytes later, on demand):
what the speakers play, in a format every tool reads, and one path whatever asked for it.

Blocking code: callers run it in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field

from audio.chimes import default_chime
from audio.profile import note, stage
from audio.speech import SpeechError, file_sha256

__all__ = [
    "SAMPLE_RATE",
    "Loudness",
    "NothingToSay",
    "PostProcessSettings",
    "ProcessedAudio",
    "measure_loudness",
    "mp3_from_opus",
    "opus_encoder_args",
    "postprocess",
]

SAMPLE_RATE = 48000
#: Headroom kept below the true-peak target by the limiter: Opus at 32 kb/s overshoots espeak-ng's buzzy voice
#: by 1.5-2 dB. The limiter now sits after the final gain, so its ceiling holds exactly and no extra margin is
#: needed for the loudness the limiter itself takes away (the old 4.5 dB covered that too).
_PEAK_MARGIN_DB = 3.0
#: Shorter than one 400 ms gating block, integrated loudness is undefined.
_MIN_MEASURABLE_S = 0.5
#: Passes at most when the encoded file is out of spec (true peak over the ceiling or loudness off target).
_PEAK_RETRIES = 3
#: A final loudness further than this from the target triggers a corrective pass (the contract allows 1 LU).
_LOUDNESS_TOLERANCE_LU = 0.5
#: A corrective pass moves the gain by at most this much, along the search's slope taken as no flatter than
#: ``_MIN_SLOPE`` (LU per dB).
_MAX_CORRECTION_DB = 4.0
_MIN_SLOPE = 0.25
#: Candidate gains for the limiter search, as fractions of how far the plain gain would push peaks past the
#: ceiling, added to that plain gain. On espeak-ng the target sits near 0.8-1.1 of it.
_SEARCH_STEPS = (0.3, 0.6, 0.9, 1.2, 1.6)
#: The profile row a render records when its peaks stay under the ceiling and the limiter search is skipped.
LIMITER_NOT_NEEDED = "post: limiter search not needed (peaks under the ceiling)"
#: alimiter's range ends at -24 dBFS.
_LIMIT_FLOOR = 0.0625
#: Speech longer than this is searched on a sample of it: the first second of every ``_SAMPLE_EVERY_S``.
_SAMPLE_ABOVE_S = 30.0
_SAMPLE_EVERY_S = 3


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


def _command(settings: PostProcessSettings, args: list[str]) -> list[str]:
    return [settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", *args]


def _ffmpeg(settings: PostProcessSettings, args: list[str], what: str) -> str:
    try:
        proc = subprocess.run(_command(settings, args), capture_output=True, timeout=settings.ffmpeg_timeout_s,
                              check=False)
    except FileNotFoundError:
        raise SpeechError(f"{what}: {settings.ffmpeg} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{what}: ffmpeg timed out after {settings.ffmpeg_timeout_s:g}s") from None
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SpeechError(f"{what}: ffmpeg failed ({proc.returncode}): {stderr[-400:]}")
    return stderr


class _Run:
    """One ffmpeg run started ahead of need, reading its input — audio, or its filter graph — from stdin.

    ffmpeg spends ~0.1 s loading its ~230 shared libraries before it reads anything (in this project's VM;
    less on bare metal). Started while the step before it still works, it has done that by the time its
    input is known. A filter graph comes through ``-filter_complex_script pipe:0``: ffmpeg reads it, until
    stdin closes, before it opens its input files, so those need only exist once the graph is sent.
    """

    def __init__(self, settings: PostProcessSettings, args: list[str], what: str,
                 stdout: int = subprocess.DEVNULL) -> None:
        self.settings = settings
        self.what = what
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in wait()/cancel()
        self._timed_out = threading.Event()
        self._watchdog: threading.Timer | None = None
        try:
            # stderr to a file: a full stderr pipe would stall the process.
            self.proc = subprocess.Popen(_command(settings, args), stdin=subprocess.PIPE, stdout=stdout,
                                         stderr=self._log)
        except FileNotFoundError:
            self._log.close()
            raise SpeechError(f"{what}: {settings.ffmpeg} is not installed") from None

    def _kill(self) -> None:
        self._timed_out.set()
        self.proc.kill()

    def start_clock(self) -> None:
        """From now on the run has ``ffmpeg_timeout_s`` to finish (waiting for its input does not count)."""
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.settings.ffmpeg_timeout_s, self._kill)
            self._watchdog.start()

    def feed(self, data: bytes | Path) -> None:
        """Sends the input (bytes, or a file's content) and closes stdin."""
        self.start_clock()
        stdin = self.proc.stdin
        assert stdin is not None
        # A run that died stops reading: its exit status, read in wait(), says why.
        with contextlib.suppress(BrokenPipeError):
            if isinstance(data, Path):
                with data.open("rb") as fh:
                    shutil.copyfileobj(fh, stdin, 1 << 16)
            else:
                stdin.write(data)
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    def wait(self) -> str:
        """Waits for the end; the run's stderr. SpeechError when it failed or timed out."""
        self.start_clock()
        try:
            self.proc.wait()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
        self._log.seek(0)
        stderr = self._log.read().decode(errors="replace")
        self._log.close()
        if self._timed_out.is_set():
            raise SpeechError(f"{self.what}: ffmpeg timed out after {self.settings.ffmpeg_timeout_s:g}s")
        if self.proc.returncode != 0:
            raise SpeechError(f"{self.what}: ffmpeg failed ({self.proc.returncode}): {stderr[-400:]}")
        return stderr

    def cancel(self) -> None:
        """Kills the run if it still runs (it was not needed, or a step before it failed)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._log.close()


_SUMMARY = re.compile(r"^\[ebur128@(?P<name>[^\s\]]+) @ [^\]]*\] Summary:$", re.M)
_NUMBER = r"(-?(?:[0-9]+(?:\.[0-9]*)?|inf))"
_SUMMARY_I = re.compile(rf"Integrated loudness:\s*I:\s*{_NUMBER} LUFS\s*Threshold:\s*{_NUMBER}")
_SUMMARY_LRA = re.compile(rf"LRA:\s*{_NUMBER} LU")
_SUMMARY_TP = re.compile(rf"True peak:\s*Peak:\s*{_NUMBER}")


def _parse_ebur128(stderr: str, what: str) -> dict[str, Loudness]:
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


def _meter(name: str, true_peak: bool) -> str:
    # framelog=verbose keeps the per-frame lines out of an info-level log (ffmpeg 5 has no framelog=quiet).
    return f"ebur128@{name}={'peak=true:' if true_peak else ''}framelog=verbose"


def measure_loudness(path: Path, settings: PostProcessSettings | None = None) -> Loudness:
    """Integrated loudness and true peak of any file ffmpeg can decode (ebur128: 3x faster than loudnorm)."""
    settings = settings or PostProcessSettings()
    what = f"measuring {path.name}"
    stderr = _ffmpeg(settings, ["-i", str(path), "-af", _meter("m", True), "-f", "null", "-"], what)
    found = _parse_ebur128(stderr, what).get("m")
    if found is None:
        raise SpeechError(f"{what}: ffmpeg printed no loudness summary")
    return found


def _wav_seconds(path: Path) -> float:
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


def _prepare_args(src: str, work: Path, name: str, trim: bool,
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
    graph = (f"[0:a]{chain},asplit=3[out][m][p];[m]{_meter('src', False)},anullsink;"
             f"[p]aresample={SAMPLE_RATE},{_peak_meter('src')},anullsink")
    return ["-i", src, "-filter_complex", graph, "-map", "[out]", "-c:a", "pcm_f32le", str(prepared)], prepared


def _prepared_loudness(stderr: str, name: str, what: str) -> Loudness:
    """Pass 1's measurement. Its ``true_peak_db`` is the sample peak at 48 kHz: the peaks the limiter sees."""
    measured = _parse_ebur128(stderr, what).get("src")
    if measured is None:
        raise SpeechError(f"{what}: ffmpeg printed no loudness summary")
    if not measured.measurable:
        raise NothingToSay(f"{name}: the audio is silent")
    peak = _parse_peak(stderr, "src", what)
    return Loudness(integrated_lufs=measured.integrated_lufs, true_peak_db=peak, lra=measured.lra,
                    threshold=measured.threshold)


def _prepare(src: Path, work: Path, name: str, trim: bool, settings: PostProcessSettings) -> tuple[Path, Loudness]:
    """Pass 1: decode, (trim,) downmix to mono and measure, at the source rate."""
    what = f"{name}: trim and measure"
    args, prepared = _prepare_args(str(src), work, name, trim, settings)
    return prepared, _prepared_loudness(_ffmpeg(settings, args, what), name, what)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The gain (dB) that brings the prepared signal to the target, and the limiter after it (None: none)."""

    gain_db: float
    limit: float | None
    #: LU of output per dB of gain around ``gain_db`` (1 without a limiter), for a corrective pass.
    slope: float


def _limiter(limit: float) -> str:
    return f"alimiter=limit={limit:.5f}:attack=5:release=50:level=0:latency=1"


def _search_run(prepared: Path, name: str, settings: PostProcessSettings) -> _Run:
    """The limiter search's ffmpeg, started ahead: its graph comes on stdin."""
    return _Run(settings, ["-filter_complex_script", "pipe:0", "-i", str(prepared), "-f", "null", "-"],
                f"{name}: limiter search")


def _plan(prepared: Path, measured: Loudness, name: str, settings: PostProcessSettings, margin_db: float,
          search: _Run | None = None, meanwhile: Callable[[], None] | None = None) -> _Plan:
    """Finds the gain to the target; when its peaks would pass the ceiling, through a limiter at the ceiling.

    The limiter takes loudness away (on espeak-ng 2-6 LU), so the gain is searched: candidate gains are measured
    side by side in one ffmpeg run and the one that meets the target is interpolated. Long speech is searched
    on a fixed sample (one second in three) to a third of the cost: the sample only estimates what the limiter
    takes away — its plain loudness is measured in the same run and the whole file's (pass 1) is the base.
    On espeak-ng the sample's estimate stays within 0.1 LU of the whole file's; the Opus check catches the rest.
    ``search``: the search's ffmpeg started ahead (see :class:`_Run`); cancelled when no search is needed.
    ``meanwhile`` is called once the search runs (at once when there is none): to start the next step ahead.
    """
    gain = settings.loudness_lufs - measured.integrated_lufs
    ceiling_db = settings.true_peak_db - margin_db
    over = measured.true_peak_db + gain - ceiling_db
    if over <= 0:
        # A profile row, so the render's stages show that no search ran (bench/tts.py prints it).
        note(LIMITER_NOT_NEEDED, 0.0)
        if search is not None:
            search.cancel()
        if meanwhile is not None:
            meanwhile()
        return _Plan(gain, None, 1.0)
    limit = min(1.0, max(_LIMIT_FLOOR, 10 ** (ceiling_db / 20)))
    gains = [gain + over * step for step in _SEARCH_STEPS]
    sample = _wav_seconds(prepared) > _SAMPLE_ABOVE_S
    source = f"[0:a]aselect='lt(mod(t,{_SAMPLE_EVERY_S}),1)'," if sample else "[0:a]"
    branches = "".join(f"[b{i}]" for i in range(len(gains)))
    graph = ";".join([f"{source}asplit={len(gains) + 1}{branches}[plain]",
                      f"[plain]{_meter('plain', False)},anullsink",
                      *(f"[b{i}]volume={g:.3f}dB,{_limiter(limit)},{_meter(f'g{i}', False)},anullsink"
                        for i, g in enumerate(gains))])
    run = search or _search_run(prepared, name, settings)
    try:
        run.feed(graph.encode())
        if meanwhile is not None:
            meanwhile()
        found = _parse_ebur128(run.wait(), run.what)
    finally:
        run.cancel()
    try:
        # What the sample misses of the whole file's loudness (0 without sampling), added back to each level.
        offset = measured.integrated_lufs - found["plain"].integrated_lufs
        levels = [found[f"g{i}"].integrated_lufs + offset for i in range(len(gains))]
    except KeyError:
        raise SpeechError(f"{run.what}: ffmpeg printed no loudness summary") from None
    return _interpolate(gains, levels, settings.loudness_lufs, limit)


def _interpolate(gains: list[float], levels: list[float], target: float, limit: float) -> _Plan:
    """Piecewise-linear inverse of loudness(gain); outside the measured range, the nearest segment extended."""
    index = next((i for i in range(1, len(gains)) if levels[i] >= target), len(gains) - 1)
    g0, g1, l0, l1 = gains[index - 1], gains[index], levels[index - 1], levels[index]
    # A limiter never makes louder gain quieter; a flat segment (fully limited) keeps a small slope.
    slope = max((l1 - l0) / (g1 - g0), 0.05)
    gain = g0 + (target - l0) / slope
    # Beyond the measured points the line is a guess: stay within one step of them; the Opus check corrects.
    step = g1 - g0
    gain = min(max(gain, gains[0] - step), gains[-1] + step)
    return _Plan(gain, limit, slope)


def _level_chain(plan: _Plan) -> str:
    """The gain (and limiter), at 48 kHz so that the limiter also catches the peaks between source samples."""
    chain = f"aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono,volume={plan.gain_db:.3f}dB"
    return chain + (f",{_limiter(plan.limit)}" if plan.limit is not None else "")


def _chime_file(setting: ChimeSetting, kind: Literal["start", "end"], chime_dir: Path,
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
        prepared, measured = _prepare(source, work, f"chime-{kind}", False, settings)
        plan = _plan(prepared, measured, f"chime-{kind}", settings, _PEAK_MARGIN_DB)
        out = work / "chime.wav"
        _ffmpeg(settings, ["-i", str(prepared), "-af", _level_chain(plan), "-c:a", "pcm_s16le", *_BITEXACT, str(out)],
                f"normalising the {kind} chime")
        os.replace(out, target)  # atomic: concurrent renders of the same chime each write a whole file
    return target


_BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]


def _final_inputs(start: Path | None, speech: Path, end: Path | None) -> list[str]:
    """The final pass's ffmpeg inputs, in the order :func:`_final_graph` numbers them."""
    return [arg for path in (start, speech, end) if path is not None for arg in ("-i", str(path))]


def _final_graph(start: bool, end: bool, plan: _Plan, settings: PostProcessSettings) -> str:
    """The final pass's graph: [start chime + gap] + levelled speech + [gap + end chime] → ``[out]``."""
    parts: list[str] = []
    graph: list[str] = []
    gap = settings.chime_gap_s
    mono48 = f"aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono"
    if start:
        graph.append(f"[{len(parts)}:a]{mono48},apad=pad_dur={gap}[p{len(parts)}]")
        parts.append(f"[p{len(parts)}]")
    graph.append(f"[{len(parts)}:a]{_level_chain(plan)}[p{len(parts)}]")
    parts.append(f"[p{len(parts)}]")
    if end:
        graph.append(f"[{len(parts)}:a]{mono48},adelay=delays={round(gap * 1000)}:all=1[p{len(parts)}]")
        parts.append(f"[p{len(parts)}]")
    graph.append(f"{''.join(parts)}concat=n={len(parts)}:v=0:a=1[out]")
    return ";".join(graph)


def _mp3_args(settings: PostProcessSettings) -> list[str]:
    return ["-c:a", "libmp3lame", "-b:a", settings.mp3_bitrate, *_BITEXACT, "-id3v2_version", "0",
            "-write_xing", "0", "-f", "mp3"]


def opus_encoder_args(settings: PostProcessSettings) -> list[str]:
    """ffmpeg's encoder options for our Opus files (``bench/tts.py`` encodes its reference with the same).

    ``voip`` tunes libopus for speech intelligibility. 60 ms packets instead of 20 ms: the same quality (wideband
    PESQ equal to three decimals on espeak-ng and Piper at 40 kb/s), about 8% less encoder CPU, slightly smaller
    files; the latency they add does not matter for a file.
    """
    return ["-c:a", "libopus", "-b:a", settings.opus_bitrate, "-application", "voip",
            "-compression_level", str(settings.opus_complexity), "-frame_duration", "60"]


def mp3_from_opus(opus: Path, mp3: Path, settings: PostProcessSettings) -> None:
    """Writes ``mp3``: the Opus file decoded and re-encoded, byte for byte what an eager render writes."""
    _ffmpeg(settings, ["-i", str(opus), "-map", "0:a", *_mp3_args(settings), str(mp3)], f"MP3 of {opus.name}")


class _FinalPass:
    """Pass 2's two ffmpeg runs, started ahead (see :class:`_Run`): the Opus encoder (``voip``,
    ``opus_complexity``), whose graph comes on stdin, and the meter, which decodes the Opus stream as
    :func:`_tee` copies it from the encoder to ``speech.ogg`` and measures it (integrated loudness, true peak:
    what a listener gets) — and, when asked, encodes the decoded stream to MP3. The meter costs the other core,
    not time after the encode.

    (Levelling in a third process that pipes raw samples to the encoder measured no faster and cost 0.35 s
    more CPU: not done.)
    """

    def __init__(self, inputs: list[str], out_dir: Path, settings: PostProcessSettings) -> None:
        self.opus = out_dir / "speech.ogg"
        self.mp3 = out_dir / "speech.mp3" if settings.mp3 else None
        # Reproducible bytes: the same input always gives the same file and so the same sha256.
        self.encoder = _Run(settings, ["-filter_complex_script", "pipe:0", *inputs, "-map", "[out]",
                                       *opus_encoder_args(settings), *_BITEXACT, "-f", "ogg", "pipe:1"],
                            "Opus encode", stdout=subprocess.PIPE)
        try:
            if self.mp3 is None:
                meter = ["-f", "ogg", "-i", "pipe:0", "-af", _meter("opus", True), "-f", "null", "-"]
            else:
                meter = ["-f", "ogg", "-i", "pipe:0", "-filter_complex",
                         f"[0:a]asplit[m][e];[m]{_meter('opus', True)},anullsink", "-map", "[e]",
                         *_mp3_args(settings), str(self.mp3)]
            self.meter = _Run(settings, meter, "measuring speech.ogg" + (" + MP3 encode" if self.mp3 else ""))
        except BaseException:
            self.encoder.cancel()
            raise

    def cancel(self) -> None:
        """Kills both runs (idempotent)."""
        self.encoder.cancel()
        self.meter.cancel()

    def run(self, graph: str) -> tuple[Path, Loudness, Path | None]:
        """Sends the graph, copies the stream, waits for both; the Opus file, its measurement, the MP3."""
        try:
            started = time.perf_counter()
            self.encoder.feed(graph.encode())
            self.meter.start_clock()
            _tee(self.encoder.proc.stdout, self.opus, self.meter.proc.stdin)
            # The encoder's failure explains the meter's (no stream to read): it is reported first.
            self.encoder.wait()
            encoded = time.perf_counter()
            stderr = self.meter.wait()
            note("post: level + Opus encode (final pass)", encoded - started)
            note(f"post: {self.meter.what}, after the encode ended", time.perf_counter() - encoded)
        finally:
            self.cancel()
        final = _parse_ebur128(stderr, "measuring speech.ogg").get("opus")
        if final is None:
            raise SpeechError("measuring speech.ogg: ffmpeg printed no loudness summary")
        return self.opus, final, self.mp3


def _tee(source: IO[bytes] | None, path: Path, sink: IO[bytes] | None) -> None:
    """Copies ``source`` to the file ``path`` and to ``sink`` until the end, then closes ``sink``.

    Each chunk is passed on as soon as it arrives (no waiting for a full buffer), so the meter is never more
    than one Ogg page or so behind the encoder and finishes right after it.
    """
    assert source is not None and sink is not None  # both were opened as pipes
    sink_open = True
    fd = source.fileno()
    with path.open("wb") as out:
        while chunk := os.read(fd, 1 << 16):
            out.write(chunk)
            if sink_open:
                try:
                    sink.write(chunk)
                    sink.flush()
                except BrokenPipeError:
                    # The meter died; its exit status reports why once everything has ended.
                    sink_open = False
    with contextlib.suppress(BrokenPipeError):
        sink.close()


def postprocess(source: Path | Callable[[], Path], out_dir: Path, settings: PostProcessSettings,
                chime_dir: Path) -> ProcessedAudio:
    """Turns an engine's raw file into ``speech.ogg`` (and ``speech.mp3``) inside ``out_dir``.

    ``source`` is the file, or a function that makes it (the engine): then pass 1's ffmpeg is started before
    it is called, loads its libraries while the engine speaks and reads the engine's file from stdin; each
    later run is likewise started while the one before it works (see :class:`_Run`). ``chime_dir`` keeps the
    generated default chimes and the loudness-matched copies of chimes.
    Raises :class:`NothingToSay` when the audio is silent, :class:`SpeechError` when ffmpeg fails, and whatever
    ``source()`` raises.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with stage("post: chimes (normalised once, then reused)"):
        start = _chime_file(settings.chime_start, "start", chime_dir, settings)
        end = _chime_file(settings.chime_end, "end", chime_dir, settings)
    margin = _PEAK_MARGIN_DB
    correction = 0.0
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp, contextlib.ExitStack() as ahead:
        work = Path(tmp)
        (work / "try-0").mkdir()
        # Each ffmpeg run is started one step before it is needed, and blocks on its stdin until its input is
        # known (killed on the way out if it never is): pass 1 while the engine speaks, the search while pass 1
        # works, the final pass while the search works. (Starting them all at once made them compete for the
        # two cores: ~0.1 s slower.)
        what = "speech: trim and measure"
        pass1_args, prepared = _prepare_args("pipe:0" if callable(source) else str(source), work, "speech", True,
                                             settings)
        pass1 = _Run(settings, pass1_args, what)
        ahead.callback(pass1.cancel)
        raw = source() if callable(source) else None
        with stage("post: trim + measure (pass 1)"):
            pass1.feed(raw if raw is not None else b"")  # b"": the input is the file on the command line
            search = _search_run(prepared, "speech", settings)
            ahead.callback(search.cancel)
            source_loudness = _prepared_loudness(pass1.wait(), "speech", what)
        started_ahead: list[_FinalPass] = []

        def start_final_pass() -> None:
            started_ahead.append(_FinalPass(_final_inputs(start, prepared, end), work / "try-0", settings))
            ahead.callback(started_ahead[0].cancel)

        with stage("post: limiter search"):
            plan = _plan(prepared, source_loudness, "speech", settings, margin, search, start_final_pass)
        tries: list[tuple[tuple[bool, float, float], Path, Loudness, Path | None, _Plan]] = []
        for attempt in range(_PEAK_RETRIES):
            levelled = _Plan(plan.gain_db + correction, plan.limit, plan.slope)
            if attempt:
                note("post: corrective passes", 0.0)  # counted; their time is in the rows below
                (work / f"try-{attempt}").mkdir()
            final_pass = started_ahead[0] if attempt == 0 else \
                _FinalPass(_final_inputs(start, prepared, end), work / f"try-{attempt}", settings)
            opus, final, mp3 = final_pass.run(_final_graph(start is not None, end is not None, levelled, settings))
            overshoot = final.true_peak_db - settings.true_peak_db
            miss = settings.loudness_lufs - final.integrated_lufs
            # The peak ceiling is the hard limit, loudness the aim: rank tries that way.
            tries.append(((overshoot > 0, max(overshoot, 0.0), abs(miss)), opus, final, mp3, levelled))
            if overshoot <= 0 and abs(miss) <= _LOUDNESS_TOLERANCE_LU:
                break
            if overshoot > 0:
                # Opus overshot the ceiling: limit harder and search the gain again.
                margin += overshoot + 0.5
                with stage("post: limiter search"):
                    plan = _plan(prepared, source_loudness, "speech", settings, margin)
            elif abs(miss) > _LOUDNESS_TOLERANCE_LU:
                # What the Opus measure misses beyond the plan (chimes, codec), corrected along the plan's slope;
                # bounded, because a target out of reach (flat slope) must not turn into a huge gain.
                step = miss / max(plan.slope, _MIN_SLOPE)
                correction += max(-_MAX_CORRECTION_DB, min(_MAX_CORRECTION_DB, step))
        # A later try is not always better (a target out of reach): keep the best one.
        _, opus_try, final, mp3_try, chosen = min(tries, key=lambda t: t[0])
        opus = out_dir / opus_try.name
        os.replace(opus_try, opus)
        mp3 = None
        if mp3_try is not None:
            mp3 = out_dir / mp3_try.name
            os.replace(mp3_try, mp3)
        speech_s = _wav_seconds(prepared)
    chimes_s = sum(_wav_seconds(chime) + settings.chime_gap_s for chime in (start, end) if chime is not None)
    with stage("post: sha256 of the Opus file"):
        digest = file_sha256(opus)
    return ProcessedAudio(opus_path=opus, mp3_path=mp3, sha256=digest, size=opus.stat().st_size,
                          duration_ms=round((speech_s + chimes_s) * 1000), sample_rate=SAMPLE_RATE,
                          loudness_lufs=final.integrated_lufs, true_peak_db=final.true_peak_db,
                          source_loudness_lufs=source_loudness.integrated_lufs, limited=chosen.limit is not None)


def tools_missing(settings: PostProcessSettings | None = None) -> list[str]:
    """External programs post-processing needs that are not on PATH."""
    settings = settings or PostProcessSettings()
    return [t for t in (settings.ffmpeg,) if shutil.which(t) is None]
