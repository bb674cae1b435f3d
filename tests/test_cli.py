"""The ``loaphuong`` command: subcommands, help, and ``tts`` producing real Vietnamese speech."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOAPHUONG = [sys.executable, "-m", "loaphuong.cli"]


def test_help_lists_the_subcommands() -> None:
    proc = subprocess.run([*LOAPHUONG, "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for command in ("controller", "agent", "demo", "tts"):
        assert command in proc.stdout
    bad = subprocess.run([*LOAPHUONG, "fly"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown command" in bad.stderr


def test_tts_writes_vietnamese_speech(tmp_path: Path) -> None:
    out = tmp_path / "tin.ogg"
    proc = subprocess.run([*LOAPHUONG, "tts", "Ủy ban nhân dân phường thông báo", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "espeak:" in proc.stdout and "LUFS" in proc.stdout
    assert out.read_bytes()[:4] == b"OggS"
    probe = subprocess.run(["ffmpeg", "-nostdin", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True,
                           timeout=30)
    assert "opus" in probe.stderr
    # Speech is deterministic: the same text gives the same bytes, so the media store deduplicates it.
    again = tmp_path / "again.ogg"
    subprocess.run([*LOAPHUONG, "tts", "Ủy ban nhân dân phường thông báo", "-o", str(again)], check=True,
                   capture_output=True, timeout=60)
    assert again.read_bytes() == out.read_bytes()


def test_tts_refuses_text_with_nothing_to_read(tmp_path: Path) -> None:
    for text in ("   ", "😀 🎉 !!!", "<speak></speak>"):
        proc = subprocess.run([*LOAPHUONG, "tts", text, "-o", str(tmp_path / "x.ogg")], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 1 and "empty after normalisation" in proc.stderr, (text, proc.stderr)
        assert not (tmp_path / "x.ogg").exists()


def test_tts_normalize_only_prints_the_reading() -> None:
    proc = subprocess.run([*LOAPHUONG, "tts", "--normalize-only", "Ngày 8-1 lúc 14h30, UBND phường họp."],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout.strip() == ("Ngày tám tháng một lúc mười bốn giờ ba mươi phút, ủy ban nhân dân phường họp.")


def test_tts_writes_an_mp3_copy_when_asked(tmp_path: Path) -> None:
    out, mp3 = tmp_path / "tin.ogg", tmp_path / "tin.mp3"
    proc = subprocess.run([*LOAPHUONG, "tts", "Loa phường xin thông báo.", "-o", str(out), "--mp3", str(mp3)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                            str(mp3)], capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "mp3" and out.read_bytes()[:4] == b"OggS"
