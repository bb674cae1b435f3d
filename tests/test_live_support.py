"""Support for the live tests and bench (no tests here): Icecast beside a controller, tones, detection."""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import struct
import subprocess
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from controller.broadcasts.live.icecast import start_icecast
from controller.processes import ManagedProcess
from controller.tools.local_stack import free_port

RATE = 48_000


def start_icecast_for(api: str, directory: Path) -> tuple[ManagedProcess, int]:
    """Icecast on a free loopback port whose listener check is ``api``'s ``/api/v1/live/icecast-auth``.

    The access file lands at ``directory/icecast.json`` (the path given to the controller as
    ``LP_ICECAST_FILE``; the controller reads it whenever a session starts).
    """
    # A free port can be taken by another test's process before Icecast binds it: start_icecast then says so
    # (it checks that its own Icecast answers), and another port is tried.
    for attempt in range(3):
        port = free_port()
        try:
            return start_icecast(directory, port, f"{api}/api/v1/live/icecast-auth"), port
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def tone_pcm(seconds: float, freq: float = 1000.0, amplitude: float = 0.5) -> bytes:
    """s16le mono 48 kHz sine."""
    n = int(seconds * RATE)
    peak = int(32767 * amplitude)
    return struct.pack(f"<{n}h", *(int(peak * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n)))


def write_wav(path: Path, pcm: bytes) -> Path:
    """A 48 kHz mono 16-bit WAV (what Chromium's fake microphone plays)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return path


def tone_power(samples: list[float], freq: float, rate: int = RATE) -> float:
    """Relative power of ``freq`` in ``samples`` (Goertzel), 0..~1 for a full-scale sine."""
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 4 * power / (len(samples) ** 2)


def wav_samples(path: Path) -> tuple[list[float], int]:
    """Samples of a 16-bit WAV (first channel) as floats, and its rate."""
    with wave.open(str(path), "rb") as w:
        rate, channels, n = w.getframerate(), w.getnchannels(), w.getnframes()
        raw = w.readframes(n)
    values = struct.unpack(f"<{len(raw) // 2}h", raw)
    return [v / 32768 for v in values[::channels]], rate


def heard_tone(path: Path, freq: float = 1000.0) -> float:
    """Seconds of ``path`` in which ``freq`` clearly sounds (100 ms blocks)."""
    samples, rate = wav_samples(path)
    block = rate // 10
    loud = sum(1 for i in range(0, len(samples) - block, block)
               if tone_power(samples[i:i + block], freq, rate) > 0.01)
    return loud / 10


def relay_files(sink_dir: Path, play_id: str) -> list[Path]:
    """The WAV files a file-sink agent wrote for a relay/live play."""
    log = sink_dir / "plays.jsonl"
    if not log.exists():
        return []
    lines: list[dict[str, Any]] = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    return [sink_dir / str(x["file"]) for x in lines if x.get("event") == "start" and x.get("play_id") == play_id]


@contextlib.contextmanager
def served_ogg_tone(directory: Path, seconds: float, name: str) -> Iterator[str]:
    """A 1 kHz mono Ogg Opus tone of ``seconds``, served whole (as fast as the socket takes it) by an HTTP
    server on 127.0.0.1, as an upstream radio that bursts; yields its URL, the server stopped on leaving."""
    tone = directory / name
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=1000:duration={seconds:g}:sample_rate=48000", "-ac", "1", "-c:a", "libopus",
                    str(tone)], check=True, timeout=30)

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
        yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
    finally:
        server.shutdown()
        server.server_close()
