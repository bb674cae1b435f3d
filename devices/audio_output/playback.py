"""What every speaker output shares: the sample format, the sound in progress, the live-stream connection.

Every method here blocks (waiting, stopping a process) and is meant to be called from a worker thread,
never from the event loop.
"""

from __future__ import annotations

import subprocess
import threading
import time
from abc import ABC, abstractmethod

#: What the file sink writes: the rate and layout a Pi's DAC is fed at.
SINK_RATE = 48_000
SINK_CHANNELS = 1
SINK_WIDTH = 2


class OutputError(RuntimeError):
    """The output cannot play (missing player binary, undecodable media, device gone)."""


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of ``actual_start_ms`` (the protocol's, without importing it)."""
    return time.time_ns() // 1_000_000


class Playback(ABC):
    """One sound in progress; ``actual_start_ms`` is when its first sample went out."""

    def __init__(self, actual_start_ms: int) -> None:
        self.actual_start_ms = actual_start_ms
        self.error: str | None = None
        #: Something worth keeping in proof of play even when the sound completed (a relay that dropped).
        self.note: str = ""
        self._stopped = threading.Event()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped.is_set()

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the sound ends or ``timeout`` passes; True if it has ended."""

    def stop(self) -> None:
        """Cuts the sound short; :meth:`wait` then returns promptly."""
        self._stopped.set()
        self._halt()

    @abstractmethod
    def _halt(self) -> None: ...


class StreamPlayer(ABC):
    """One connection to a live stream, as sound; ends when the stream ends or fails."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Blocks up to ``timeout``; True once the stream has ended."""

    @abstractmethod
    def close(self) -> str:
        """Stops it (if still going) and returns the tail of its error output."""

    @property
    @abstractmethod
    def frames(self) -> int:
        """Samples (per channel) that have sounded so far."""


def end_process(proc: subprocess.Popen[bytes], done: threading.Event | None = None) -> str:
    """Terminates a stream process (then kills it) and returns the tail of its stderr."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
    if done is not None:
        done.wait(3)
    try:
        err = proc.stderr.read().decode(errors="replace")[-300:].strip() if proc.stderr else ""
    except ValueError:  # a stop from the event loop and the relay thread closed it at the same moment
        err = ""
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return err
