"""The faster render path: MP3 on demand, espeak-ng workers started ahead, ffmpeg runs started ahead,
the sampled limiter search and the stage profile — with real espeak-ng (pyttsx3) and ffmpeg."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from audio.cache import SpeechCache
from audio.engines import AllEnginesFailed, EspeakEngine, EspeakEngineConfig, shutdown_workers, workers
from audio.pipeline import NothingToSay, SpeechConfig, cache_key, render
from audio.postprocess import LIMITER_NOT_NEEDED, PostProcessSettings, measure_loudness, postprocess
from audio.profile import recording

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None,
                                reason="ffmpeg and espeak-ng are needed")

TEXT = "Loa phường xin thông báo: chiều nay mất điện từ hai giờ đến bốn giờ để sửa đường dây."
CONFIG = SpeechConfig(engines=[EspeakEngineConfig(voice="vi")])


def _ffmpeg_children() -> list[int]:
    """Our own child processes that run ffmpeg (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == os.getpid() and comm == "ffmpeg":
            found.append(int(entry.name))
    return found


def test_the_mp3_is_made_on_demand_and_equals_the_eager_one(tmp_path: Path) -> None:
    lazy_cache = SpeechCache(tmp_path / "lazy")
    plain = render(TEXT, CONFIG, lazy_cache)
    assert plain.mp3_path is None and not plain.cached
    asked = render(TEXT, CONFIG, lazy_cache, mp3=True)
    # The cached render got its MP3: no new synthesis, the same Opus file.
    assert asked.cached and asked.sha256 == plain.sha256 and asked.path == plain.path
    assert asked.mp3_path is not None and asked.mp3_path.read_bytes()[:2] in (b"\xff\xfb", b"\xff\xf3", b"ID")
    meta = json.loads((asked.path.parent / "meta.json").read_text())
    assert meta["mp3"] == "speech.mp3" and "speech.mp3" in meta["files"]
    again = render(TEXT, CONFIG, lazy_cache)  # kept with the entry
    assert again.mp3_path == asked.mp3_path

    eager_config = CONFIG.model_copy(update={"mp3": True})
    assert cache_key(TEXT, eager_config) == cache_key(TEXT, CONFIG)  # mp3 does not change the files
    eager = render(TEXT, eager_config, SpeechCache(tmp_path / "eager"))
    assert not eager.cached and eager.sha256 == plain.sha256
    assert eager.mp3_path is not None and eager.mp3_path.read_bytes() == asked.mp3_path.read_bytes()


def test_espeak_speaks_the_same_samples_as_the_cli_every_time(tmp_path: Path) -> None:
    engine = EspeakEngine(EspeakEngineConfig(voice="vi", rate=150, pitch=50), 30)
    outputs = [engine.synthesize(TEXT, tmp_path / f"s{i}").path.read_bytes() for i in range(3)]
    cli = tmp_path / "cli.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-s", "150", "-p", "50", "-w", str(cli), TEXT], check=True)
    assert outputs[0] == outputs[1] == outputs[2] == cli.read_bytes()
    faster = EspeakEngine(EspeakEngineConfig(voice="vi", rate=300), 30).synthesize(TEXT, tmp_path / "f").path
    assert faster.stat().st_size < 0.7 * len(outputs[0])  # the rate is honoured


def test_the_next_espeak_worker_waits_ready(tmp_path: Path) -> None:
    engine = EspeakEngine(EspeakEngineConfig(voice="vi"), 30)
    engine.synthesize("Xin chào.", tmp_path)
    pool = workers._pools[tuple(engine.worker_command())]
    ready = pool._next
    assert ready is not None and ready.alive()
    assert ready.wait_ready(30), "the worker started ahead never said it was ready"
    with recording() as stages:
        engine.synthesize("Xin chào bà con.", tmp_path)
    # The request went to the worker that was already ready: nothing was started or waited for (the start row
    # is exactly zero only when that branch was skipped). How long a start costs is bench/tts.py's figure.
    start = [s.seconds for s in stages if s.name == "engine: espeak worker start"]
    assert start == [0.0]
    assert ready.alive() is False  # one request per worker: used once, then stopped
    assert pool._next is not None and pool._next is not ready
    shutdown_workers()
    assert not workers._pools


def test_the_profile_names_every_stage(tmp_path: Path) -> None:
    with recording() as stages:
        render(TEXT, CONFIG, SpeechCache(tmp_path / "c"))
    names = {s.name for s in stages}
    for expected in ("normalise", "cache lookup", "engine: espeak synthesis (inside the worker)",
                     "post: trim + measure (pass 1)", "post: limiter search", "post: level + Opus encode (final pass)",
                     "post: measuring speech.ogg, after the encode ended", "post: sha256 of the Opus file",
                     "cache: write the entry + evict"):
        assert expected in names
    with recording() as hit:
        render(TEXT, CONFIG, SpeechCache(tmp_path / "c"))
    assert [s.name for s in hit] == ["normalise", "cache key", "cache lookup"]


def test_runs_started_ahead_are_stopped_when_nothing_comes(tmp_path: Path) -> None:
    failing = SpeechConfig(engines=[EspeakEngineConfig(voice="no-such-voice", language=None)])
    with pytest.raises(AllEnginesFailed):
        render(TEXT, failing, SpeechCache(tmp_path / "a"))
    assert _ffmpeg_children() == []
    silent = tmp_path / "silent.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "2",
                    str(silent)], check=True)
    with pytest.raises(NothingToSay):
        postprocess(lambda: silent, tmp_path / "out", PostProcessSettings(), tmp_path / "chimes")
    assert _ffmpeg_children() == []


def test_the_engine_or_its_file_give_the_same_result(tmp_path: Path) -> None:
    wav = EspeakEngine(EspeakEngineConfig(), 30).synthesize(TEXT, tmp_path / "raw").path
    settings = PostProcessSettings(chime_start="default", chime_end="default")
    by_path = postprocess(wav, tmp_path / "a", settings, tmp_path / "chimes")
    by_engine = postprocess(lambda: wav, tmp_path / "b", settings, tmp_path / "chimes")
    assert by_path.sha256 == by_engine.sha256 and by_path.duration_ms == by_engine.duration_ms


def test_long_speech_searched_on_a_sample_lands_on_the_target(tmp_path: Path) -> None:
    text = " ".join([TEXT, "Đề nghị bà con chủ động chuẩn bị nước và đèn.", "Xin cảm ơn."] * 4)
    wav = EspeakEngine(EspeakEngineConfig(), 60).synthesize(text, tmp_path / "raw").path
    with recording() as stages:
        result = postprocess(wav, tmp_path / "out", PostProcessSettings(), tmp_path / "chimes")
    assert result.duration_ms > 30_000  # long enough to be sampled
    assert not any(s.name == "post: corrective passes" for s in stages)  # right the first time
    final = measure_loudness(result.opus_path)
    assert abs(final.integrated_lufs - (-16.0)) <= 0.5 and final.true_peak_db <= -1.0
    assert result.sha256 == hashlib.sha256(result.opus_path.read_bytes()).hexdigest()


def test_opus_is_written_in_60_ms_packets(tmp_path: Path) -> None:
    wav = EspeakEngine(EspeakEngineConfig(), 30).synthesize(TEXT, tmp_path / "raw").path
    result = postprocess(wav, tmp_path / "out", PostProcessSettings(), tmp_path / "chimes")
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "packet=duration",
                          "-of", "csv=p=0", str(result.opus_path)], capture_output=True, text=True, check=True).stdout
    durations = [int(x.strip(",")) for x in out.split()]
    assert durations and max(durations) == 2880  # 60 ms at 48 kHz


def test_audio_that_needs_no_limiter_skips_the_search(tmp_path: Path) -> None:
    tone = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                    "-af", "volume=0.1", str(tone)], check=True)
    with recording() as stages:
        result = postprocess(lambda: tone, tmp_path / "out", PostProcessSettings(), tmp_path / "chimes")
    assert not result.limited and abs(result.loudness_lufs - (-16.0)) <= 0.5 and result.true_peak_db <= -1.0
    assert abs(result.duration_ms - 3000) < 100
    assert _ffmpeg_children() == []
    assert LIMITER_NOT_NEEDED in [s.name for s in stages]  # the search run started ahead was cancelled unused


def teardown_module() -> None:
    shutdown_workers()
