"""The file sink as a live speaker: it writes a stream when it would be heard (paced by itself, not by
ffmpeg -re, which held live Ogg ~1 s back), stops writing at a stop, and reads Ogg mounts without probing."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.audio_output import SINK_RATE, FileSink, relay_input_args


@pytest.fixture
def served_whole(tmp_path: Path) -> Iterator[str]:
    """An 8 s Ogg Opus tone served whole, as fast as the socket takes it (an upstream that bursts)."""
    tone = tmp_path / "tone.ogg"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=1000:duration=8:sample_rate=48000", "-ac", "1", "-c:a", "libopus", str(tone)],
                   check=True, timeout=30)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = tone.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/ogg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tone.ogg"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stream_served_whole_is_written_in_real_time_and_a_stop_cuts_it(tmp_path: Path, served_whole: str) -> None:
    sink = FileSink("sink", tmp_path / "sink", tmp_path / "cache")
    player = sink.open_stream(served_whole, play_id="relay-x", volume=100)
    try:
        started = time.monotonic()
        deadline = started + 10
        while player.frames == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert player.frames > 0, "nothing decoded"
        time.sleep(1.5)
        written_s = player.frames / SINK_RATE
        elapsed = time.monotonic() - started
        # Paced: about what has been heard so far, never the whole 8 s the server sent at once.
        assert 1.0 <= written_s <= elapsed + 0.3, (written_s, elapsed)
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
