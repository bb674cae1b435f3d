"""Pass 2, the final pass: gain (+ limiter), chimes, the Opus encode, the meter on the Opus stream and the MP3."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import IO

from audio.postprocess.ffmpeg import BITEXACT, FfmpegRun, run_ffmpeg
from audio.postprocess.limiter import Plan, level_chain
from audio.postprocess.loudness import ebur128_meter, parse_ebur128
from audio.postprocess.settings import SAMPLE_RATE, Loudness, PostProcessSettings
from audio.profile import note
from audio.speech import SpeechError

__all__ = ["FinalPass", "final_graph", "final_inputs", "mp3_from_opus", "opus_encoder_args"]


def final_inputs(start: Path | None, speech: Path, end: Path | None) -> list[str]:
    """The final pass's ffmpeg inputs, in the order :func:`final_graph` numbers them."""
    return [arg for path in (start, speech, end) if path is not None for arg in ("-i", str(path))]


def final_graph(start: bool, end: bool, plan: Plan, settings: PostProcessSettings) -> str:
    """The final pass's graph: [start chime + gap] + levelled speech + [gap + end chime] → ``[out]``."""
    parts: list[str] = []
    graph: list[str] = []
    gap = settings.chime_gap_s
    mono48 = f"aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono"
    if start:
        graph.append(f"[{len(parts)}:a]{mono48},apad=pad_dur={gap}[p{len(parts)}]")
        parts.append(f"[p{len(parts)}]")
    graph.append(f"[{len(parts)}:a]{level_chain(plan)}[p{len(parts)}]")
    parts.append(f"[p{len(parts)}]")
    if end:
        graph.append(f"[{len(parts)}:a]{mono48},adelay=delays={round(gap * 1000)}:all=1[p{len(parts)}]")
        parts.append(f"[p{len(parts)}]")
    graph.append(f"{''.join(parts)}concat=n={len(parts)}:v=0:a=1[out]")
    return ";".join(graph)


def _mp3_args(settings: PostProcessSettings) -> list[str]:
    return ["-c:a", "libmp3lame", "-b:a", settings.mp3_bitrate, *BITEXACT, "-id3v2_version", "0",
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
    run_ffmpeg(settings, ["-i", str(opus), "-map", "0:a", *_mp3_args(settings), str(mp3)], f"MP3 of {opus.name}")


class FinalPass:
    """Pass 2's two ffmpeg runs, started ahead (see :class:`FfmpegRun`): the Opus encoder (``voip``,
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
        self.encoder = FfmpegRun(settings, ["-filter_complex_script", "pipe:0", *inputs, "-map", "[out]",
                                            *opus_encoder_args(settings), *BITEXACT, "-f", "ogg", "pipe:1"],
                                 "Opus encode", stdout=subprocess.PIPE)
        try:
            if self.mp3 is None:
                meter = ["-f", "ogg", "-i", "pipe:0", "-af", ebur128_meter("opus", True), "-f", "null", "-"]
            else:
                meter = ["-f", "ogg", "-i", "pipe:0", "-filter_complex",
                         f"[0:a]asplit[m][e];[m]{ebur128_meter('opus', True)},anullsink", "-map", "[e]",
                         *_mp3_args(settings), str(self.mp3)]
            self.meter = FfmpegRun(settings, meter, "measuring speech.ogg" + (" + MP3 encode" if self.mp3 else ""))
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
        final = parse_ebur128(stderr, "measuring speech.ogg").get("opus")
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
