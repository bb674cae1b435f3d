"""Post-processing with real ffmpeg on real espeak-ng (pyttsx3) output."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from audio.chimes import default_chime
from audio.engines import EspeakEngine, EspeakEngineConfig
from audio.postprocess import NothingToSay, PostProcessSettings, measure_loudness, postprocess

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None,
                                reason="ffmpeg and espeak-ng are needed")

TEXT = ("Loa phường xin thông báo: từ bảy giờ sáng thứ bảy, trạm y tế tổ chức tiêm chủng cho trẻ em dưới năm "
        "tuổi. Đề nghị các gia đình mang theo sổ tiêm chủng.")


@pytest.fixture(scope="module")
def espeak_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return EspeakEngine(EspeakEngineConfig(), 30).synthesize(TEXT, tmp_path_factory.mktemp("raw")).path


def _probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
                          "-show_entries", "format=format_name,duration", "-of", "json", str(path)],
                         capture_output=True, check=True).stdout
    data = json.loads(out)
    return {**data["streams"][0], **data["format"]}


def _seconds(path: Path) -> float:
    return float(_probe(path)["duration"])


def test_loudness_hits_the_target_on_real_espeak_output(espeak_wav: Path, tmp_path: Path) -> None:
    result = postprocess(espeak_wav, tmp_path / "out", PostProcessSettings(mp3=True), tmp_path / "chimes")
    # Measured independently on the final Opus file, as a listener gets it.
    final = measure_loudness(result.opus_path)
    assert abs(final.integrated_lufs - (-16.0)) <= 1.0
    assert final.true_peak_db <= -1.0 + 0.5
    assert abs(result.loudness_lufs - final.integrated_lufs) < 0.05
    opus = _probe(result.opus_path)
    assert (opus["codec_name"], opus["sample_rate"], opus["channels"], opus["format_name"]) == \
        ("opus", "48000", 1, "ogg")
    assert result.sample_rate == 48000
    assert result.mp3_path is not None and _probe(result.mp3_path)["codec_name"] == "mp3"
    assert result.sha256 == hashlib.sha256(result.opus_path.read_bytes()).hexdigest()
    assert abs(result.duration_ms / 1000 - _seconds(result.opus_path)) < 0.1


def test_other_targets_and_no_mp3(espeak_wav: Path, tmp_path: Path) -> None:
    settings = PostProcessSettings(loudness_lufs=-20.0, true_peak_db=-2.0, mp3=False)
    result = postprocess(espeak_wav, tmp_path / "out", settings, tmp_path / "chimes")
    assert abs(result.loudness_lufs - (-20.0)) <= 1.0 and result.true_peak_db <= -2.0 + 0.5
    assert result.mp3_path is None and not (tmp_path / "out" / "speech.mp3").exists()


def test_silence_is_trimmed_at_both_ends(espeak_wav: Path, tmp_path: Path) -> None:
    padded = tmp_path / "padded.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(espeak_wav),
                    "-af", "adelay=delays=1500:all=1,apad=pad_dur=2", str(padded)], check=True)
    plain = postprocess(espeak_wav, tmp_path / "a", PostProcessSettings(mp3=False), tmp_path / "chimes")
    trimmed = postprocess(padded, tmp_path / "b", PostProcessSettings(mp3=False), tmp_path / "chimes")
    assert _seconds(padded) - _seconds(espeak_wav) > 3.4
    assert abs(trimmed.duration_ms - plain.duration_ms) < 150


def test_default_chimes_are_generated_once_and_wrap_the_speech(espeak_wav: Path, tmp_path: Path) -> None:
    chimes = tmp_path / "chimes"
    plain = postprocess(espeak_wav, tmp_path / "a", PostProcessSettings(mp3=False), chimes)
    settings = PostProcessSettings(chime_start="default", chime_end="default", chime_gap_s=0.3, mp3=False)
    chimed = postprocess(espeak_wav, tmp_path / "b", settings, chimes)
    start = default_chime("start", chimes)
    # Each chime is 1.9 s plus a 0.3 s gap.
    assert abs((chimed.duration_ms - plain.duration_ms) - 2 * 2200) < 150
    assert abs(chimed.loudness_lufs - (-16.0)) <= 1.0 and chimed.true_peak_db <= -0.5
    generated = start.stat().st_mtime_ns
    postprocess(espeak_wav, tmp_path / "c", settings, chimes)
    assert start.stat().st_mtime_ns == generated  # reused, not regenerated


def test_a_site_chime_file_is_used(espeak_wav: Path, tmp_path: Path) -> None:
    own = tmp_path / "own.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    str(own)], check=True)
    plain = postprocess(espeak_wav, tmp_path / "a", PostProcessSettings(mp3=False), tmp_path / "chimes")
    chimed = postprocess(espeak_wav, tmp_path / "b", PostProcessSettings(chime_start=own, chime_gap_s=0, mp3=False),
                         tmp_path / "chimes")
    assert abs((chimed.duration_ms - plain.duration_ms) - 1000) < 100


def test_silent_audio_is_nothing_to_say(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono",
                    "-t", "2", str(silent)], check=True)
    with pytest.raises(NothingToSay):
        postprocess(silent, tmp_path / "out", PostProcessSettings(), tmp_path / "chimes")
