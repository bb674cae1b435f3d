"""The real player path on ALSA, captured through ALSA's file plugin (no sound card needed)."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from tests.conftest import AgentFactory, ControllerHandle


@pytest.mark.parametrize("player", ["aplay", "mpv"])
def test_agent_plays_through_alsa(controller: ControllerHandle, agents: AgentFactory, tmp_path: Path,
                                  player: str) -> None:
    if shutil.which(player) is None:
        pytest.skip(f"{player} not installed")
    home = tmp_path / "alsa-home"
    home.mkdir()
    capture = home / "captured.wav"
    # alsa-lib reads ~/.asoundrc: the default device becomes a file writer in front of the null device.
    (home / ".asoundrc").write_text(
        f'pcm.!default {{ type file; slave.pcm "null"; file "{capture}"; format "wav" }}\n')
    agent = agents("loa-01", output="alsa", env={"HOME": str(home)})
    if player != "aplay":
        text = agent.files.config.read_text().replace('device = "default"', f'device = "default"\nplayer = "{player}"')
        agent.files.config.write_text(text)
        agent.proc.stop()
        from controller.tools.local_stack import start_agent

        agent.proc = start_agent(agent.files, tmp_path / "loa-01-mpv.log", {"HOME": str(home)})
        controller.wait_for(lambda: controller.device("loa-01")["online"], 20, "agent back online")
    status, body = controller.post("/api/v1/announcements",
                                   {"text": "Kiểm tra loa phát thanh phường.", "targets": ["loa-01"]})
    assert status == 202
    ann = controller.wait_deliveries(body["id"], {"played", "failed"}, timeout=40)
    delivery = ann["deliveries"][0]
    assert delivery["status"] == "played", (delivery, agent.log())
    assert delivery["play"]["output"] == "speaker"
    assert capture.exists(), f"{player} wrote nothing to ALSA"
    with wave.open(str(capture), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    expected = ann["media"]["duration_ms"] / 1000
    assert abs(seconds - expected) < 0.25, (seconds, expected)
    # Decoded audio is large: nothing is left behind once the play has ended.
    assert not list((agent.files.data_dir / "decoded").glob("*.wav"))
