"""The real player path: mpv on ALSA, captured through ALSA's file plugin (no sound card needed)."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from tests.conftest import AgentFactory, ControllerHandle

pytestmark = pytest.mark.skipif(shutil.which("mpv") is None, reason="mpv not installed")


def test_agent_plays_through_mpv_and_alsa(controller: ControllerHandle, agents: AgentFactory,
                                          tmp_path: Path) -> None:
    home = tmp_path / "alsa-home"
    home.mkdir()
    capture = home / "captured.wav"
    # alsa-lib reads ~/.asoundrc: the default device becomes a file writer in front of the null device.
    (home / ".asoundrc").write_text(
        f'pcm.!default {{ type file; slave.pcm "null"; file "{capture}"; format "wav" }}\n')
    agents("loa-01", output="alsa", env={"HOME": str(home)})
    status, body = controller.post("/api/v1/announcements",
                                   {"text": "Kiểm tra loa phát thanh phường.", "targets": ["loa-01"]})
    assert status == 202
    ann = controller.wait_deliveries(body["id"], {"played", "failed"}, timeout=40)
    delivery = ann["deliveries"][0]
    assert delivery["status"] == "played", delivery
    assert delivery["play"]["output"] == "speaker"
    assert capture.exists(), "mpv wrote nothing to ALSA"
    with wave.open(str(capture), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    expected = ann["media"]["duration_ms"] / 1000
    assert abs(seconds - expected) < 0.25, (seconds, expected)
