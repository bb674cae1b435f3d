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
3. pass 2 (:class:`FinalPass`): gain (+ limiter), 48 kHz mono, the chimes concatenated in the same graph
   (each normalised the same way once and kept in the chime directory), encoded to Opus (speech settings:
   ``voip``, complexity ``opus_complexity``, 60 ms packets), while a second process decodes the Opus stream
   as it is written and measures it (integrated loudness and true peak, as a listener gets it) — and, when
   asked, encodes that decoded stream to MP3 in the same process;
4. only when that Opus measurement is out of spec (true peak over the ceiling, loudness off the target): a
   corrective pass with a lower ceiling or a corrected gain — rare.

ffmpeg takes ~0.1 s to load its libraries before it does anything, so each run is started one step ahead
and waits on its stdin for its input (:class:`FfmpegRun`): pass 1 while the engine speaks, the search while
pass 1 works, pass 2 while the search works. Every run of a render therefore costs its work, not its start.

The MP3 is always the Opus file re-encoded (:func:`mp3_from_opus` gives the same bytes later, on demand):
what the speakers play, in a format every tool reads, and one path whatever asked for it.

Blocking code: callers run it in a thread.

This module runs the steps; they live in ``settings`` (what is asked, what comes back), ``ffmpeg`` (running
it), ``loudness`` (the meters and pass 1), ``limiter`` (the gain and the limiter search), ``chimes`` and
``final`` (pass 2: the Opus encode, its measurement, the MP3).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from audio.postprocess.chimes import chime_file
from audio.postprocess.ffmpeg import FfmpegRun
from audio.postprocess.ffmpeg import tools_missing as tools_missing
from audio.postprocess.final import FinalPass, final_graph, final_inputs, mp3_from_opus, opus_encoder_args
from audio.postprocess.limiter import LIMITER_NOT_NEEDED as LIMITER_NOT_NEEDED
from audio.postprocess.limiter import PEAK_MARGIN_DB, Plan, find_plan, search_run
from audio.postprocess.loudness import measure_loudness, prepare_args, prepared_loudness, wav_seconds
from audio.postprocess.settings import (
    SAMPLE_RATE,
    Loudness,
    NothingToSay,
    PostProcessSettings,
    ProcessedAudio,
)
from audio.profile import note, stage
from audio.speech import file_sha256

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

#: Passes at most when the encoded file is out of spec (true peak over the ceiling or loudness off target).
_PEAK_RETRIES = 3
#: A final loudness further than this from the target triggers a corrective pass (the contract allows 1 LU).
_LOUDNESS_TOLERANCE_LU = 0.5
#: A corrective pass moves the gain by at most this much, along the search's slope taken as no flatter than
#: ``_MIN_SLOPE`` (LU per dB).
_MAX_CORRECTION_DB = 4.0
_MIN_SLOPE = 0.25


def postprocess(source: Path | Callable[[], Path], out_dir: Path, settings: PostProcessSettings,
                chime_dir: Path) -> ProcessedAudio:
    """Turns an engine's raw file into ``speech.ogg`` (and ``speech.mp3``) inside ``out_dir``.

    ``source`` is the file, or a function that makes it (the engine): then pass 1's ffmpeg is started before
    it is called, loads its libraries while the engine speaks and reads the engine's file from stdin; each
    later run is likewise started while the one before it works (see :class:`FfmpegRun`). ``chime_dir`` keeps
    the generated default chimes and the loudness-matched copies of chimes.
    Raises :class:`NothingToSay` when the audio is silent, :class:`SpeechError` when ffmpeg fails, and whatever
    ``source()`` raises.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with stage("post: chimes (normalised once, then reused)"):
        start = chime_file(settings.chime_start, "start", chime_dir, settings)
        end = chime_file(settings.chime_end, "end", chime_dir, settings)
    margin = PEAK_MARGIN_DB
    correction = 0.0
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp, contextlib.ExitStack() as ahead:
        work = Path(tmp)
        (work / "try-0").mkdir()
        # Each ffmpeg run is started one step before it is needed, and blocks on its stdin until its input is
        # known (killed on the way out if it never is): pass 1 while the engine speaks, the search while pass 1
        # works, the final pass while the search works. (Starting them all at once made them compete for the
        # two cores: ~0.1 s slower.)
        what = "speech: trim and measure"
        pass1_args, prepared = prepare_args("pipe:0" if callable(source) else str(source), work, "speech", True,
                                            settings)
        pass1 = FfmpegRun(settings, pass1_args, what)
        ahead.callback(pass1.cancel)
        raw = source() if callable(source) else None
        with stage("post: trim + measure (pass 1)"):
            pass1.feed(raw if raw is not None else b"")  # b"": the input is the file on the command line
            search = search_run(prepared, "speech", settings)
            ahead.callback(search.cancel)
            source_loudness = prepared_loudness(pass1.wait(), "speech", what)
        started_ahead: list[FinalPass] = []

        def start_final_pass() -> None:
            started_ahead.append(FinalPass(final_inputs(start, prepared, end), work / "try-0", settings))
            ahead.callback(started_ahead[0].cancel)

        with stage("post: limiter search"):
            plan = find_plan(prepared, source_loudness, "speech", settings, margin, search, start_final_pass)
        tries: list[tuple[tuple[bool, float, float], Path, Loudness, Path | None, Plan]] = []
        for attempt in range(_PEAK_RETRIES):
            levelled = Plan(plan.gain_db + correction, plan.limit, plan.slope)
            if attempt:
                note("post: corrective passes", 0.0)  # counted; their time is in the rows below
                (work / f"try-{attempt}").mkdir()
            final_pass = started_ahead[0] if attempt == 0 else \
                FinalPass(final_inputs(start, prepared, end), work / f"try-{attempt}", settings)
            opus, final, mp3 = final_pass.run(final_graph(start is not None, end is not None, levelled, settings))
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
                    plan = find_plan(prepared, source_loudness, "speech", settings, margin)
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
        speech_s = wav_seconds(prepared)
    chimes_s = sum(wav_seconds(chime) + settings.chime_gap_s for chime in (start, end) if chime is not None)
    with stage("post: sha256 of the Opus file"):
        digest = file_sha256(opus)
    return ProcessedAudio(opus_path=opus, mp3_path=mp3, sha256=digest, size=opus.stat().st_size,
                          duration_ms=round((speech_s + chimes_s) * 1000), sample_rate=SAMPLE_RATE,
                          loudness_lufs=final.integrated_lufs, true_peak_db=final.true_peak_db,
                          source_loudness_lufs=source_loudness.integrated_lufs, limited=chosen.limit is not None)
