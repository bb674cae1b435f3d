"""Uploads are judged by what ffprobe finds inside them, not by their name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from audio.probe import ProbeError, probe_audio


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probe")
    files = {name: d / name for name in ("tone.mp3", "tone.wav", "video.mp4", "pic.png", "short.wav",
                                         "cover.mp3", "two.mka", "text.mp3")}
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=3", files["tone.mp3"].as_posix())
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=3", files["tone.wav"].as_posix())
    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=2:size=64x64:rate=5", "-f", "lavfi", "-i",
           "sine=duration=2", "-shortest", files["video.mp4"].as_posix())
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1", files["pic.png"].as_posix())
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.1", files["short.wav"].as_posix())
    ffmpeg("-i", files["tone.mp3"].as_posix(), "-i", files["pic.png"].as_posix(), "-map", "0:a", "-map", "1:v",
           "-c", "copy", "-disposition:v", "attached_pic", files["cover.mp3"].as_posix())
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-f", "lavfi", "-i", "sine=duration=2:frequency=880",
           "-map", "0", "-map", "1", files["two.mka"].as_posix())
    files["text.mp3"].write_text("Đây không phải là âm thanh.")
    return files


def test_recordings_are_accepted(media: dict[str, Path]) -> None:
    mp3 = probe_audio(media["tone.mp3"], 3600)
    assert mp3.codec == "mp3" and 2.9 < mp3.duration_s < 3.2
    assert probe_audio(media["tone.wav"], 3600).codec == "pcm_s16le"
    assert probe_audio(media["cover.mp3"], 3600).codec == "mp3"  # cover art is tolerated


@pytest.mark.parametrize(("name", "limit", "needle"), [
    ("video.mp4", 3600, "only audio"),
    ("pic.png", 3600, "unsupported file type"),
    ("text.mp3", 3600, "not a readable audio file"),
    ("short.wav", 3600, "too short"),
    ("tone.mp3", 2, "the limit is"),
    ("two.mka", 3600, "more than one audio track"),
])
def test_anything_else_is_refused_with_a_reason(media: dict[str, Path], name: str, limit: float, needle: str) -> None:
    with pytest.raises(ProbeError, match=needle):
        probe_audio(media[name], limit)
