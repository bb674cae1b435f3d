"""One ffmpeg process per live session: the session's audio in, Icecast and the Opus recording out.

The microphone arrives as raw PCM (s16le, 48 kHz, mono — see docs/live.md) on ffmpeg's stdin; a relay
is read from its upstream URL. ffmpeg encodes twice: a low-delay Opus stream in small Ogg pages to the
session's Icecast mount, and the recording kept for accountability. Writes to stdin are asyncio pipe
writes, so the event loop never blocks on the encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: The microphone's format on the WebSocket and on ffmpeg's stdin.
PCM_RATE = 48_000
PCM_CHANNELS = 1
PCM_SAMPLE_BYTES = 2


def microphone_input() -> list[str]:
    """ffmpeg input arguments for the browser's PCM on stdin (no probing: the format is fixed).

    ``-probesize 32``: ffmpeg otherwise reads up to a second of a known raw format before it opens its
    outputs, and the session goes on air that much later (bench/live_delay.py: the mount came up
    0.3–1.2 s after ffmpeg started, 0.27–0.29 s with it).
    """
    return ["-f", "s16le", "-ar", str(PCM_RATE), "-ac", str(PCM_CHANNELS), "-probesize", "32", "-i", "pipe:0"]


def relay_input(url: str) -> list[str]:
    """ffmpeg arguments for an upstream stream; a stall of 5 s counts as lost.

    ``-re``: an upstream that bursts (a file served whole, a server's burst-on-connect) is still sent on
    at the pace it is heard, so Icecast's listeners never fall behind or run ahead.
    """
    return ["-re", "-rw_timeout", "5000000", "-i", url]


def source_command(input_args: list[str], icecast_url: str, recording: Path) -> list[str]:
    """The full ffmpeg command: one input, the Icecast mount and the recording as outputs."""
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", *input_args,
        # To Icecast: 20 ms Opus frames in 20 ms Ogg pages, so listeners get audio as it is spoken.
        "-map", "0:a:0", "-vn", "-ac", "1", "-c:a", "libopus", "-b:a", "64k", "-application", "lowdelay",
        "-frame_duration", "20", "-f", "ogg", "-page_duration", "20000", "-flush_packets", "1",
        "-content_type", "application/ogg", icecast_url,
        # The record: speech quality, ordinary pages.
        "-map", "0:a:0", "-vn", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-application", "voip",
        "-f", "ogg", str(recording),
    ]


class SourceFeeder:
    """The running ffmpeg of one session."""

    def __init__(self, cmd: list[str], log_path: Path, takes_stdin: bool) -> None:
        self._cmd = cmd
        self._log_path = log_path
        self._takes_stdin = takes_stdin
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Starts ffmpeg (its errors go to the session's log file)."""
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as err:
            self._proc = await asyncio.create_subprocess_exec(
                *self._cmd, stdin=asyncio.subprocess.PIPE if self._takes_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=err, start_new_session=True)

    @property
    def running(self) -> bool:
        """True while ffmpeg runs."""
        return self._proc is not None and self._proc.returncode is None

    async def write(self, chunk: bytes) -> bool:
        """Hands audio to the encoder; False if it is gone."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return False
        try:
            proc.stdin.write(chunk)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def wait(self) -> int:
        """Waits for ffmpeg to exit; its exit code."""
        assert self._proc is not None
        return await self._proc.wait()

    async def close(self, grace_s: float = 5.0) -> int | None:
        """Ends the input (ffmpeg flushes the recording), then waits; kills it if it lingers."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            if proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.close()
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()  # a relay has no end of input: SIGTERM makes ffmpeg finish its files
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                log.warning("live source ffmpeg did not finish in %.0f s; killing it", grace_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode

    def error_tail(self) -> str:
        """The end of ffmpeg's error output."""
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")[-400:].strip()
        except OSError:
            return ""
