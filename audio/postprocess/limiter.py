"""The gain to the loudness target, and the look-ahead limiter when that gain would push peaks past the
ceiling: candidate gains measured through the limiter side by side, the one that lands on the target
interpolated (:func:`find_plan`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audio.postprocess.ffmpeg import FfmpegRun
from audio.postprocess.loudness import ebur128_meter, parse_ebur128, wav_seconds
from audio.postprocess.settings import SAMPLE_RATE, Loudness, PostProcessSettings
from audio.profile import note
from audio.speech import SpeechError

__all__ = ["LIMITER_NOT_NEEDED", "PEAK_MARGIN_DB", "Plan", "find_plan", "level_chain", "search_run"]

#: Headroom kept below the true-peak target by the limiter: Opus at 32 kb/s overshoots espeak-ng's buzzy voice
#: by 1.5-2 dB. The limiter now sits after the final gain, so its ceiling holds exactly and no extra margin is
#: needed for the loudness the limiter itself takes away (the old 4.5 dB covered that too).
PEAK_MARGIN_DB = 3.0
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


@dataclass(frozen=True, slots=True)
class Plan:
    """The gain (dB) that brings the prepared signal to the target, and the limiter after it (None: none)."""

    gain_db: float
    limit: float | None
    #: LU of output per dB of gain around ``gain_db`` (1 without a limiter), for a corrective pass.
    slope: float


def _limiter(limit: float) -> str:
    return f"alimiter=limit={limit:.5f}:attack=5:release=50:level=0:latency=1"


def search_run(prepared: Path, name: str, settings: PostProcessSettings) -> FfmpegRun:
    """The limiter search's ffmpeg, started ahead: its graph comes on stdin."""
    return FfmpegRun(settings, ["-filter_complex_script", "pipe:0", "-i", str(prepared), "-f", "null", "-"],
                     f"{name}: limiter search")


def find_plan(prepared: Path, measured: Loudness, name: str, settings: PostProcessSettings, margin_db: float,
              search: FfmpegRun | None = None, meanwhile: Callable[[], None] | None = None) -> Plan:
    """Finds the gain to the target; when its peaks would pass the ceiling, through a limiter at the ceiling.

    The limiter takes loudness away (on espeak-ng 2-6 LU), so the gain is searched: candidate gains are measured
    side by side in one ffmpeg run and the one that meets the target is interpolated. Long speech is searched
    on a fixed sample (one second in three) to a third of the cost: the sample only estimates what the limiter
    takes away — its plain loudness is measured in the same run and the whole file's (pass 1) is the base.
    On espeak-ng the sample's estimate stays within 0.1 LU of the whole file's; the Opus check catches the rest.
    ``search``: the search's ffmpeg started ahead (see :class:`FfmpegRun`); cancelled when no search is needed.
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
        return Plan(gain, None, 1.0)
    limit = min(1.0, max(_LIMIT_FLOOR, 10 ** (ceiling_db / 20)))
    gains = [gain + over * step for step in _SEARCH_STEPS]
    sample = wav_seconds(prepared) > _SAMPLE_ABOVE_S
    source = f"[0:a]aselect='lt(mod(t,{_SAMPLE_EVERY_S}),1)'," if sample else "[0:a]"
    branches = "".join(f"[b{i}]" for i in range(len(gains)))
    graph = ";".join([f"{source}asplit={len(gains) + 1}{branches}[plain]",
                      f"[plain]{ebur128_meter('plain', False)},anullsink",
                      *(f"[b{i}]volume={g:.3f}dB,{_limiter(limit)},{ebur128_meter(f'g{i}', False)},anullsink"
                        for i, g in enumerate(gains))])
    run = search or search_run(prepared, name, settings)
    try:
        run.feed(graph.encode())
        if meanwhile is not None:
            meanwhile()
        found = parse_ebur128(run.wait(), run.what)
    finally:
        run.cancel()
    try:
        # What the sample misses of the whole file's loudness (0 without sampling), added back to each level.
        offset = measured.integrated_lufs - found["plain"].integrated_lufs
        levels = [found[f"g{i}"].integrated_lufs + offset for i in range(len(gains))]
    except KeyError:
        raise SpeechError(f"{run.what}: ffmpeg printed no loudness summary") from None
    return _interpolate(gains, levels, settings.loudness_lufs, limit)


def _interpolate(gains: list[float], levels: list[float], target: float, limit: float) -> Plan:
    """Piecewise-linear inverse of loudness(gain); outside the measured range, the nearest segment extended."""
    index = next((i for i in range(1, len(gains)) if levels[i] >= target), len(gains) - 1)
    g0, g1, l0, l1 = gains[index - 1], gains[index], levels[index - 1], levels[index]
    # A limiter never makes louder gain quieter; a flat segment (fully limited) keeps a small slope.
    slope = max((l1 - l0) / (g1 - g0), 0.05)
    gain = g0 + (target - l0) / slope
    # Beyond the measured points the line is a guess: stay within one step of them; the Opus check corrects.
    step = g1 - g0
    gain = min(max(gain, gains[0] - step), gains[-1] + step)
    return Plan(gain, limit, slope)


def level_chain(plan: Plan) -> str:
    """The gain (and limiter), at 48 kHz so that the limiter also catches the peaks between source samples."""
    chain = f"aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono,volume={plan.gain_db:.3f}dB"
    return chain + (f",{_limiter(plan.limit)}" if plan.limit is not None else "")
