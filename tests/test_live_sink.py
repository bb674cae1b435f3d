"""The file sink as a live speaker: it writes a stream when it would be heard (paced by itself, not by
ffmpeg -re, which held live Ogg ~1 s back), stops writing at a stop, and reads Ogg mounts without probing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.audio_output import SINK_RATE, FileSink, relay_input_args
from tests.test_live_support import served_ogg_tone


@pytest.fixture
def served_whole(tmp_path: Path) -> Iterator[str]:
    """An 8 s Ogg Opus tone served whole, as fast as the socket takes it (an upstream that bursts)."""
    with served_ogg_tone(tmp_path, 8, "tone.ogg") as url:
        yield url


def test_a_stream_served_whole_is_written_in_real_time_and_a_stop_cuts_it(tmp_path: Path, served_whole: str) -> None:
    sink = FileSink("sink", tmp_path / "sink", tmp_path / "cache")
    player = sink.open_stream(served_whole, play_id="relay-x", volume=100)
    try:
        started = time.monotonic()
        deadline = started + 15
        while player.frames < SINK_RATE and time.monotonic() < deadline:  # a second of audio, or give up
            time.sleep(0.02)
        assert player.frames >= SINK_RATE, f"only {player.frames} frames decoded"
        written_s = player.frames / SINK_RATE
        elapsed = time.monotonic() - started
        # Paced: never ahead of the clock (a busy machine only makes it later), never the whole 8 s the server
        # sent at once.
        assert written_s <= elapsed + 0.3, (written_s, elapsed)  # clock-ok: never ahead of real time
    finally:
        player.close()
    at_stop = player.frames
    assert at_stop / SINK_RATE < 4.0
    time.sleep(0.3)
    assert player.frames == at_stop  # nothing written after the stop
    sink.stream_finished("relay-x", stopped=True)


def test_ogg_mounts_are_read_without_probing() -> None:
    live = relay_input_args("http://127.0.0.1:8000/live-Labc.ogg?token=t")
    assert live[live.index("-i") - 2:live.index("-i")] == ["-f", "ogg"]
    assert "-re" not in live
    for url in ("http://radio.example/stream.mp3", "http://radio.example/ogg", "http://radio.example/live"):
        args = relay_input_args(url)
        assert "-f" not in args[:args.index("-i")], url
